"""Operations and their append-only logs in the database."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from server.model.errors import OperationErrorCode
from server.model.records import (
    LogEntry,
    LogLevel,
    Operation,
    OperationError,
    OperationKind,
    OperationStatus,
    Page,
)
from server.storage.db.cursors import encode_cursor, newest_first
from server.storage.db.tables import LogRow, OperationRow

ACTIVE = (OperationStatus.QUEUED.value, OperationStatus.RUNNING.value)


def _to_domain(row: OperationRow) -> Operation:
    error = (
        OperationError(OperationErrorCode.stored(row.error_code), row.error_message or "") if row.error_code else None
    )
    return Operation(
        id=row.id,
        kind=OperationKind(row.kind),
        status=OperationStatus(row.status),
        progress=row.progress,
        stage=row.stage,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        requested_by=row.requested_by,
        dismissed=row.dismissed,
        error=error,
        restore_point_id=row.restore_point_id,
        local_copy_id=row.local_copy_id,
        params=json.loads(row.params),
        last_sequence=row.last_sequence,
    )


def _columns(op: Operation) -> dict[str, object]:
    return {
        "id": op.id,
        "kind": op.kind.value,
        "status": op.status.value,
        "progress": op.progress,
        "stage": op.stage,
        "created_at": op.created_at,
        "started_at": op.started_at,
        "finished_at": op.finished_at,
        "requested_by": op.requested_by,
        "dismissed": op.dismissed,
        "error_code": op.error.code.value if op.error else None,
        "error_message": op.error.message if op.error else None,
        "restore_point_id": op.restore_point_id,
        "local_copy_id": op.local_copy_id,
        "params": json.dumps(op.params),
        "last_sequence": op.last_sequence,
    }


async def add_operation(session: AsyncSession, op: Operation, *, log_reserved_through: int = 0) -> None:
    """Insert a new operation, with log numbers up to `log_reserved_through` reserved."""
    await session.execute(insert(OperationRow).values(**_columns(op), log_reserved_through=log_reserved_through))


async def save_operation(session: AsyncSession, op: Operation, *, log_reserved_through: int | None = None) -> None:
    """Store the operation's state; with `log_reserved_through`, also reserve log numbers up to it."""
    values = _columns(op)
    del values["id"]
    if log_reserved_through is not None:
        values["log_reserved_through"] = log_reserved_through
    await session.execute(update(OperationRow).where(col(OperationRow.id) == op.id).values(**values))


async def log_numbered_through(session: AsyncSession, op_id: str) -> int:
    """The highest log number the operation may have shown: its newest stored line, or its
    reservation if that is higher. A line added after a restart is numbered after it."""
    row = await session.get(OperationRow, op_id)
    return max(row.last_sequence, row.log_reserved_through) if row else 0


async def get_operation(session: AsyncSession, op_id: str) -> Operation | None:
    row = await session.get(OperationRow, op_id)
    return _to_domain(row) if row else None


async def page_operations(
    session: AsyncSession,
    *,
    first: int,
    after: str | None,
    statuses: Sequence[OperationStatus] | None,
    kinds: Sequence[OperationKind] | None,
    include_dismissed: bool,
    requested_by: str | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
) -> Page[Operation]:
    table = OperationRow
    conditions: list[ColumnElement[bool]] = []
    if statuses:
        conditions.append(col(table.status).in_([s.value for s in statuses]))
    if kinds:
        conditions.append(col(table.kind).in_([k.value for k in kinds]))
    # Dismissing tidies the default list; a status filter ("what failed?") still finds it.
    if not include_dismissed and not statuses:
        conditions.append(col(table.dismissed).is_(False))
    if requested_by is not None:
        conditions.append(col(table.requested_by) == requested_by)
    if created_after is not None:
        conditions.append(col(table.created_at) > created_after)
    counted = [*conditions] if created_before is None else [*conditions, col(table.created_at) < created_before]
    total = await session.scalar(select(func.count()).select_from(table).where(*counted)) or 0
    query = newest_first(
        select(table).where(*conditions), table, first=first, after=after, created_before=created_before
    )
    rows = list(await session.scalars(query))
    items = [_to_domain(row) for row in rows[:first]]
    cursors = [encode_cursor(item.created_at, item.id) for item in items]
    return Page(items=items, cursors=cursors, has_next_page=len(rows) > first, total_count=total)


async def dismiss_finished(session: AsyncSession, *, keep: Sequence[str] = ()) -> list[str]:
    """Mark every finished, not yet dismissed operation dismissed (except those in `keep`): their ids."""
    table = OperationRow
    conditions = [
        col(table.status).not_in(ACTIVE),
        col(table.dismissed).is_(False),
        col(table.id).not_in(list(keep)),
    ]
    ids = list(await session.scalars(select(col(table.id)).where(*conditions)))
    if ids:
        await session.execute(update(table).where(col(table.id).in_(ids)).values(dismissed=True))
    return ids


async def active_operations(session: AsyncSession) -> list[Operation]:
    rows = await session.scalars(select(OperationRow).where(col(OperationRow.status).in_(ACTIVE)))
    return [_to_domain(row) for row in rows]


async def append_log(session: AsyncSession, op_id: str, entries: Sequence[LogEntry]) -> None:
    if not entries:
        return
    await session.execute(
        insert(LogRow),
        [
            {
                "operation_id": op_id,
                "sequence": e.sequence,
                "at": e.at,
                "level": e.level.value,
                "message": e.message,
            }
            for e in entries
        ],
    )
    await session.execute(
        update(OperationRow).where(col(OperationRow.id) == op_id).values(last_sequence=max(e.sequence for e in entries))
    )


async def read_log(session: AsyncSession, op_id: str, *, after: int, limit: int | None) -> list[LogEntry]:
    query = (
        select(LogRow)
        .where(col(LogRow.operation_id) == op_id, col(LogRow.sequence) > after)
        .order_by(col(LogRow.sequence))
    )
    if limit is not None:
        query = query.limit(limit)
    return [
        LogEntry(sequence=r.sequence, at=r.at, level=LogLevel(r.level), message=r.message)
        for r in await session.scalars(query)
    ]


def now() -> datetime:
    return datetime.now(UTC)
