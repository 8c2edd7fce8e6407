"""Aggregates of the stored history for /metrics: counted from the database, so a restart
does not reset them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from server.storage.db.tables import LogRow, OperationRow, RestorePointRow

# The log line a prune writes for each restore point it deleted (server/services/schedules/pruning.py).
DELETED_LINE = "Deleted restore point %"


# The upper bounds (seconds) of the operation duration histogram's buckets: from a small
# restore point (well under a second) to an upload of a large copy (hours).
DURATION_BUCKETS = (0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 10800.0)


@dataclass(frozen=True, slots=True)
class Durations:
    """How long the finished operations of one kind took: their sum, count, and how many took
    at most each of DURATION_BUCKETS seconds (cumulative, as a Prometheus histogram counts)."""

    seconds: float
    count: int
    at_most: tuple[int, ...]


@dataclass
class HistoryTotals:
    operations: dict[tuple[str, str], int] = field(default_factory=dict)  # (kind, status) -> count
    durations: dict[str, Durations] = field(default_factory=dict)  # by kind
    restore_points: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # origin -> (n, size, stored)
    retention_deletions: int = 0


async def history_totals(session: AsyncSession) -> HistoryTotals:
    """Operations by kind and status, their durations (with histogram buckets), restore points by origin, and the
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
    took = case((seconds < 0, 0.0), else_=seconds)
    buckets = [func.sum(case((took <= bound, 1), else_=0)) for bound in DURATION_BUCKETS]
    timed = await session.execute(
        select(col(OperationRow.kind), func.sum(took), func.count(), *buckets)
        .where(started.is_not(None), finished.is_not(None))
        .group_by(col(OperationRow.kind))
    )
    totals.durations = {
        kind: Durations(float(total or 0.0), count, tuple(int(n or 0) for n in at_most))
        for kind, total, count, *at_most in timed
    }
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
