"""The copies schedules of this server uploaded to locations (what a location's keepLast prunes)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from server.storage.db.tables import ScheduledCopyRow


@dataclass(frozen=True, slots=True)
class ScheduledCopy:
    location: str
    file_name: str
    schedule_id: str
    restore_point_id: str
    uploaded_at: datetime


async def record(session: AsyncSession, copy: ScheduledCopy) -> None:
    """Note a copy a schedule uploaded (a name used again at that location replaces the old note)."""
    await session.merge(
        ScheduledCopyRow(
            location=copy.location,
            file_name=copy.file_name,
            schedule_id=copy.schedule_id,
            restore_point_id=copy.restore_point_id,
            uploaded_at=copy.uploaded_at,
        )
    )


async def of_schedule(session: AsyncSession, schedule_id: str, location: str) -> list[ScheduledCopy]:
    """The copies this schedule put at this location, newest first."""
    rows = await session.scalars(
        select(ScheduledCopyRow)
        .where(col(ScheduledCopyRow.schedule_id) == schedule_id, col(ScheduledCopyRow.location) == location)
        .order_by(col(ScheduledCopyRow.uploaded_at).desc(), col(ScheduledCopyRow.file_name).desc())
    )
    return [
        ScheduledCopy(row.location, row.file_name, row.schedule_id, row.restore_point_id, row.uploaded_at)
        for row in rows
    ]


async def forget(session: AsyncSession, location: str, file_name: str) -> None:
    """The copy is gone from the location (deleted by retention, or by someone else)."""
    await session.execute(
        delete(ScheduledCopyRow).where(
            col(ScheduledCopyRow.location) == location, col(ScheduledCopyRow.file_name) == file_name
        )
    )
