"""Aggregates of the stored history for /metrics: counted from the database, so a restart
does not reset them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from server.storage.tables import LogRow, OperationRow, RestorePointRow

# The log line a prune writes for each restore point it deleted (server/services/schedules/scheduler.py).
DELETED_LINE = "Deleted restore point %"


@dataclass
class HistoryTotals:
    operations: dict[tuple[str, str], int] = field(default_factory=dict)  # (kind, status) -> count
    durations: dict[str, tuple[float, int]] = field(default_factory=dict)  # kind -> (seconds, count)
    restore_points: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # origin -> (n, size, stored)
    retention_deletions: int = 0


async def history_totals(session: AsyncSession) -> HistoryTotals:
    """Operations by kind and status, their durations, restore points by origin, and the
    restore points retention deleted."""
    totals = HistoryTotals()
    rows = await session.execute(
        select(col(OperationRow.kind), col(OperationRow.status), func.count()).group_by(
            col(OperationRow.kind), col(OperationRow.status)
        )
    )
    totals.operations = {(kind, status): count for kind, status, count in rows}
    # Summed in the database, one row per kind, so a scrape costs the same at any history size;
    # the dialects differ only in how two timestamps subtract. A clock set back counts 0.
    started, finished = col(OperationRow.started_at), col(OperationRow.finished_at)
    seconds: ColumnElement[Any]
    if session.get_bind().dialect.name == "postgresql":
        seconds = func.extract("epoch", finished - started)
    else:  # SQLite keeps them as text; julianday reads that text, in days
        seconds = (func.julianday(finished) - func.julianday(started)) * 86400.0
    timed = await session.execute(
        select(col(OperationRow.kind), func.sum(case((seconds < 0, 0.0), else_=seconds)), func.count())
        .where(started.is_not(None), finished.is_not(None))
        .group_by(col(OperationRow.kind))
    )
    totals.durations = {kind: (float(total or 0.0), count) for kind, total, count in timed}
    points = await session.execute(
        select(
            col(RestorePointRow.origin),
            func.count(),
            func.coalesce(func.sum(RestorePointRow.size_bytes), 0),
            func.coalesce(func.sum(RestorePointRow.stored_bytes), 0),
        ).group_by(col(RestorePointRow.origin))
    )
    totals.restore_points = {origin: (n, int(size), int(stored)) for origin, n, size, stored in points}
    totals.retention_deletions = (
        await session.scalar(
            select(func.count())
            .select_from(LogRow)
            .join(OperationRow, col(OperationRow.id) == col(LogRow.operation_id))
            .where(col(OperationRow.kind) == "PRUNE_RESTORE_POINTS", col(LogRow.message).like(DELETED_LINE))
        )
        or 0
    )
    return totals
