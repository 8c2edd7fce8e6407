"""Aggregates of the stored history for /metrics: counted from the database, so a restart
does not reset them."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select
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
    # Durations in Python: the database dialects disagree on subtracting timestamps.
    timed = await session.stream(
        select(col(OperationRow.kind), col(OperationRow.started_at), col(OperationRow.finished_at)).where(
            col(OperationRow.started_at).is_not(None), col(OperationRow.finished_at).is_not(None)
        )
    )
    async for kind, started, finished in timed:
        assert started is not None and finished is not None  # the query's condition
        seconds, count = totals.durations.get(kind, (0.0, 0))
        totals.durations[kind] = (seconds + max(0.0, (finished - started).total_seconds()), count + 1)
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
