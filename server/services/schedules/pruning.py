"""Pruning restore points: a schedule's retention policy, after each of its successful runs
and on a timer (PRUNE_EVERY, its last prune stored with the schedule as `last_pruned_at`, so
restarts never reset it), and the age limit of safety restore points, in every prune and on a
timer of its own. Each prune is a PRUNE_RESTORE_POINTS operation whose log names every restore
point deleted or kept, and why."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime, timedelta

from server.model.errors import Busy, NotFound
from server.model.pruning.retention import RetentionDecision
from server.model.pruning.safety_age import expired_safety
from server.model.records import (
    Operation,
    OperationKind,
    RestorePointFilter,
    RestorePointOrigin,
    RetentionPolicy,
    Schedule,
)
from server.operations.live import OperationContext
from server.operations.runner import OperationRunner
from server.services.restore_points import RestorePointService
from server.services.schedules.deletion import delete_logged
from server.services.schedules.runs import at_text, ended, requester
from server.services.schedules.service import KEEP_FIELDS, ScheduleService
from server.test_seams import StepControl

# Who asks for the prune of safety restore points past their age limit when no schedule's did.
SAFETY_REQUESTER = "server:safety-age-limit"
# How often retention runs besides after each run: day-based rules (keepWithinDays, keepDaily)
# delete restore points as they age, whether or not the schedule runs.
PRUNE_EVERY = timedelta(hours=1)


class Pruning:
    """Starts prunes: a schedule's, and the safety restore points' on their timer."""

    def __init__(
        self,
        *,
        schedules: ScheduleService,
        restore_points: RestorePointService,
        runner: OperationRunner,
        safety_max_age_days: int,
        steps: StepControl,
    ) -> None:
        self._schedules = schedules
        self._restore_points = restore_points
        self._runner = runner
        self._safety_max_age_days = safety_max_age_days
        self._steps = steps  # a test's pause (BACKUPS_TEST_PAUSE_AT=prune-deleted)
        self._safety_checked_at: datetime | None = None  # checked at every start, then hourly
        self._safety_prune: asyncio.Task[None] | None = None

    def cancel(self) -> None:
        """Stop following the safety prune under way (it is the runner's to stop)."""
        if self._safety_prune is not None:
            self._safety_prune.cancel()

    async def due(self, schedule: Schedule, now: datetime) -> bool:
        """The retention timer: whether a prune of this schedule is due now (PRUNE_EVERY since
        its last, stored); one that would delete nothing is marked done without an operation."""
        # Counted from the last prune, or from the schedule's last change: as changing a schedule
        # never runs it at once, giving it a retention policy never prunes at once.
        since = max(schedule.updated_at, schedule.last_pruned_at or schedule.updated_at)
        if now - since < PRUNE_EVERY:
            return False
        if all(d.keep for d in await self._schedules.retention_preview(schedule.id)):
            await self._schedules.mark_pruned(schedule.id, now)  # nothing to delete: no operation for it
            return False
        return True

    async def start_prune(
        self, schedule: Schedule, requested_by: str | None = None, note: str | None = None
    ) -> Operation:
        """Start the PRUNE_RESTORE_POINTS operation of this schedule."""

        async def job(ctx: OperationContext) -> None:
            if note:
                ctx.log(note)
            await self._prune(ctx, schedule.id)
            await self._schedules.mark_pruned(schedule.id, self._schedules.now())

        return await self._runner.submit(
            OperationKind.PRUNE_RESTORE_POINTS,
            job,
            requested_by=requested_by or requester(schedule),
            params={"scheduleId": schedule.id},
        )

    async def safety_if_due(self, now: datetime) -> None:
        """Hourly (and at start): a prune for safety restore points past their age limit."""
        if self._safety_checked_at is not None and now - self._safety_checked_at < PRUNE_EVERY:
            return
        if self._safety_prune is not None or self._runner.exclusive_operation() is not None:
            return
        self._safety_checked_at = now
        if not await self._expired_safety():
            return

        async def job(ctx: OperationContext) -> None:
            ctx.log(f"Safety restore points older than {self._safety_max_age_days} days are deleted (on a timer).")
            await self._prune_safety(ctx)

        try:
            op = await self._runner.submit(OperationKind.PRUNE_RESTORE_POINTS, job, requested_by=SAFETY_REQUESTER)
        except Busy:
            self._safety_checked_at = None  # an apply started meanwhile: the next tick tries again
            return
        self._safety_prune = asyncio.create_task(self._after_safety_prune(op.id))

    async def _after_safety_prune(self, op_id: str) -> None:
        try:
            await ended(self._runner, op_id)
        finally:
            self._safety_prune = None

    async def _expired_safety(self) -> list[RetentionDecision]:
        narrow = RestorePointFilter(origins=(RestorePointOrigin.SAFETY,))
        points = []
        after: str | None = None
        while True:
            page = await self._restore_points.page(first=500, after=after, narrow=narrow)
            points.extend(page.items)
            if not page.has_next_page or not page.cursors:
                break
            after = page.cursors[-1]
        return expired_safety(points, self._safety_max_age_days, self._schedules.now())

    async def _prune_safety(self, ctx: OperationContext) -> None:
        doomed = await self._expired_safety()
        deleted = 0
        for decision in doomed:
            ctx.checkpoint()
            if await self._delete(ctx, decision):
                deleted += 1
        if doomed:
            ctx.log(f"Deleted {deleted} safety restore points past their age limit.")

    async def _prune(self, ctx: OperationContext, schedule_id: str) -> None:
        try:
            decisions = await self._schedules.retention_preview(schedule_id)
        except NotFound:
            ctx.log("The schedule was deleted; nothing to prune.")
            return
        doomed = [d for d in decisions if not d.keep]
        schedule = await self._schedules.get(schedule_id)
        ctx.log(f"Retention policy: {policy_text(schedule.retention) if schedule else 'unknown'}.")
        ctx.log(
            f"{len(decisions)} restore points of the schedule: {len(decisions) - len(doomed)} kept, {len(doomed)} to delete."
        )
        deleted = 0
        for number, decision in enumerate(doomed, start=1):
            ctx.checkpoint()
            if await self._delete(ctx, decision):
                deleted += 1
            ctx.progress(number / len(doomed), "Deleting restore points")
        ctx.log(f"Deleted {deleted} restore points.")
        await self._prune_safety(ctx)  # their own age limit, in every prune

    async def _delete(self, ctx: OperationContext, decision: RetentionDecision) -> bool:
        point = decision.point
        deleted = (
            f"Deleted restore point {point.id} ({point.label!r}, made {at_text(point.created_at)}): "
            + "; ".join(decision.reasons)
            + "."
        )
        return await delete_logged(
            ctx,
            self._restore_points,
            point,
            deleted=deleted,
            before_freeing=lambda: self._steps.reach(ctx, "prune-deleted"),
        )


def policy_text(policy: RetentionPolicy) -> str:
    """The policy's rules as written in the API, e.g. "keepLast=3, keepDaily=7"."""
    rules = [f"{KEEP_FIELDS[f.name]}={getattr(policy, f.name)}" for f in dataclasses.fields(policy)]
    rules = [
        rule for rule, f in zip(rules, dataclasses.fields(policy), strict=True) if getattr(policy, f.name) is not None
    ]
    return ", ".join(rules) or "no limit"
