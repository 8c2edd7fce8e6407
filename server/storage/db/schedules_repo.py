"""Schedules in the database, and the link from restore points to the schedule that made them."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from server.model.records import RestorePoint, RestorePointOrigin, RetentionPolicy, Schedule, ScheduledVerification
from server.storage.db.restore_points_repo import restore_point_of_row
from server.storage.db.tables import RestorePointRow, ScheduleRow


def _to_domain(row: ScheduleRow) -> Schedule:
    return Schedule(
        id=row.id,
        name=row.name,
        enabled=bool(row.enabled),
        cron=row.cron,
        time_zone=row.time_zone,
        jitter_seconds=row.jitter_seconds,
        label_template=row.label_template,
        retention=RetentionPolicy(**json.loads(row.retention)),
        created_at=row.created_at,
        updated_at=row.updated_at,
        next_run_at=row.next_run_at,
        last_run_at=row.last_run_at,
        last_success_at=row.last_success_at,
        last_operation_id=row.last_operation_id,
        after_change_quiet_seconds=row.after_change_quiet_seconds,
        copy_to_locations=tuple(json.loads(row.copy_to_locations)),
        last_pruned_at=row.last_pruned_at,
        verification=ScheduledVerification(**json.loads(row.verification)) if row.verification else None,
    )


def _fields(schedule: Schedule) -> dict[str, Any]:
    values = {f.name: getattr(schedule, f.name) for f in dataclasses.fields(schedule)}
    values["retention"] = json.dumps(dataclasses.asdict(schedule.retention), sort_keys=True)
    values["copy_to_locations"] = json.dumps(list(schedule.copy_to_locations))
    values["verification"] = (
        json.dumps(dataclasses.asdict(schedule.verification), sort_keys=True) if schedule.verification else None
    )
    return values


async def list_schedules(session: AsyncSession) -> list[Schedule]:
    rows = await session.scalars(select(ScheduleRow).order_by(col(ScheduleRow.name)))
    return [_to_domain(row) for row in rows]


async def get_schedule(session: AsyncSession, schedule_id: str) -> Schedule | None:
    row = await session.get(ScheduleRow, schedule_id)
    return _to_domain(row) if row else None


async def find_by_name(session: AsyncSession, name: str) -> Schedule | None:
    row = await session.scalar(select(ScheduleRow).where(col(ScheduleRow.name) == name))
    return _to_domain(row) if row else None


async def add_schedule(session: AsyncSession, schedule: Schedule) -> None:
    session.add(ScheduleRow(**_fields(schedule)))
    await session.flush()


async def save_schedule(session: AsyncSession, schedule: Schedule) -> bool:
    """Store every field of the schedule; False when it no longer exists (deleted meanwhile)."""
    row = await session.get(ScheduleRow, schedule.id)
    if row is None:
        return False
    for name, value in _fields(schedule).items():
        setattr(row, name, value)
    session.add(row)
    await session.flush()
    return True


async def delete_schedule(session: AsyncSession, schedule_id: str) -> bool:
    """Delete it; its restore points stay, without their link to it. False if there was none."""
    row = await session.get(ScheduleRow, schedule_id)
    if row is None:
        return False
    await session.delete(row)
    await unlink_restore_points(session, schedule_id)
    return True


async def unlink_restore_points(session: AsyncSession, schedule_id: str) -> None:
    """Restore points made by this (deleted) schedule lose their link to it."""
    await session.execute(
        update(RestorePointRow).where(col(RestorePointRow.schedule_id) == schedule_id).values(schedule_id=None)
    )


async def schedule_restore_points(session: AsyncSession, schedule_id: str) -> list[RestorePoint]:
    """Every restore point this schedule made, newest first."""
    rows = await session.scalars(
        select(RestorePointRow)
        .where(
            col(RestorePointRow.schedule_id) == schedule_id,
            col(RestorePointRow.origin) == RestorePointOrigin.SCHEDULED.value,
        )
        .order_by(col(RestorePointRow.created_at).desc(), col(RestorePointRow.id).desc())
    )
    return [restore_point_of_row(row) for row in rows]
