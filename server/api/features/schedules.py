"""Schedules and their retention: schedules, schedule, retentionPreview, createSchedule,
updateSchedule, deleteSchedule, runSchedule, pruneSchedule. Backup health is in health.py."""

from __future__ import annotations

from typing import TypeVar

import strawberry
from strawberry.types.unset import UnsetType

from server.api.context import Info
from server.api.errors import UserError, attempt, to_client_error
from server.api.features.operations import OperationPayload
from server.api.types.node import DeletePayload
from server.api.types.schedule import RetentionDecision, Schedule, ScheduleInput
from server.model.errors import DomainError
from server.services.schedules.service import KEEP, Keep, ScheduleSpec

T = TypeVar("T")


@strawberry.type
class SchedulePayload:
    schedule: Schedule | None
    user_errors: list[UserError]


def _or_keep(value: T | None | UnsetType) -> T | Keep:
    """A field that cannot be null on a Schedule: left out or null keeps it."""
    return KEEP if value is None or isinstance(value, UnsetType) else value


def _null_or_keep(value: T | None | UnsetType) -> T | None | Keep:
    """A field a Schedule can show as null: null sets that, left out keeps it."""
    return KEEP if isinstance(value, UnsetType) else value


def _spec(given: ScheduleInput) -> ScheduleSpec:
    retention = _or_keep(given.retention)
    locations = _or_keep(given.copy_to_locations)
    verification = _null_or_keep(given.verification)
    return ScheduleSpec(
        name=_or_keep(given.name),
        cron=_null_or_keep(given.cron),
        time_zone=_or_keep(given.time_zone),
        enabled=_or_keep(given.enabled),
        jitter_seconds=_or_keep(given.jitter_seconds),
        label_template=_null_or_keep(given.label_template),
        retention=retention if isinstance(retention, Keep) else retention.to_domain(),
        after_change_quiet_seconds=_null_or_keep(given.after_change_quiet_seconds),
        copy_to_locations=locations if isinstance(locations, Keep) else tuple(locations),
        verification=verification.to_domain()
        if verification is not None and not isinstance(verification, Keep)
        else verification,
    )


@strawberry.type
class ScheduleQueries:
    @strawberry.field(description="Every schedule, by name.")
    async def schedules(self, info: Info) -> list[Schedule]:
        return [Schedule.from_domain(s) for s in await info.context.services.schedules.list_all()]

    @strawberry.field
    async def schedule(self, info: Info, id: strawberry.ID) -> Schedule | None:
        found = await info.context.services.schedules.get(str(id))
        return Schedule.from_domain(found) if found else None

    @strawberry.field(
        description="For each restore point of the schedule, newest first: whether its retention policy keeps "
        "it, and every reason. A prune deletes exactly those with keep false."
    )
    async def retention_preview(self, info: Info, schedule_id: strawberry.ID) -> list[RetentionDecision]:
        try:
            decisions = await info.context.services.schedules.retention_preview(str(schedule_id))
        except DomainError as error:
            raise to_client_error(error) from None
        return [RetentionDecision.from_domain(d) for d in decisions]


@strawberry.type
class ScheduleMutations:
    @strawberry.mutation(
        description="Make a schedule (`name` needed). It never runs at once: its first run is its next cron time."
    )
    async def create_schedule(self, info: Info, input: ScheduleInput) -> SchedulePayload:
        made, errors = await attempt(lambda: info.context.services.schedules.create(_spec(input)))
        return SchedulePayload(schedule=Schedule.from_domain(made) if made else None, user_errors=errors)

    @strawberry.mutation(
        description="Change a schedule (`enabled: false` pauses it); a field left out keeps its value (see "
        "ScheduleInput). A changed cron or time zone, or a resume, counts the next run from now; it never runs at "
        "once. An after-change schedule counts every change made from then on."
    )
    async def update_schedule(self, info: Info, id: strawberry.ID, input: ScheduleInput) -> SchedulePayload:
        changed, errors = await attempt(lambda: info.context.services.schedules.update(str(id), _spec(input)))
        return SchedulePayload(schedule=Schedule.from_domain(changed) if changed else None, user_errors=errors)

    @strawberry.mutation(
        description="Delete a schedule. A run under way finishes; its restore points stay, without their schedule."
    )
    async def delete_schedule(self, info: Info, id: strawberry.ID) -> DeletePayload:
        deleted, errors = await attempt(lambda: info.context.services.schedules.delete(str(id)))
        return DeletePayload(deleted_id=strawberry.ID(deleted) if deleted else None, user_errors=errors)

    @strawberry.mutation(
        description="Run a schedule now (its next scheduled time stays); its retention prunes afterwards. "
        "BUSY while its previous run goes or an apply holds the system."
    )
    async def run_schedule(self, info: Info, id: strawberry.ID) -> OperationPayload:
        op, errors = await attempt(lambda: info.context.services.scheduler.run_now(str(id)))
        return OperationPayload.of(op, errors)

    @strawberry.mutation(
        description="Apply the schedule's retention policy now (a PRUNE_RESTORE_POINTS operation): it deletes "
        "exactly what retentionPreview says, each deletion named in its log with the reason."
    )
    async def prune_schedule(self, info: Info, id: strawberry.ID) -> OperationPayload:
        services, actor = info.context.services, info.context.actor

        async def start():  # noqa: ANN202
            schedule = await services.schedules.require(str(id))
            return await services.scheduler.start_prune(schedule, requested_by=actor.name)

        op, errors = await attempt(start)
        return OperationPayload.of(op, errors)
