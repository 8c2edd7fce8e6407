"""A schedule's runs: each an ordinary create operation (and its copies to locations), started
when due, by runSchedule or after a change; which schedule has a run or a prune under way, and
what follows a run's end (its success recorded, then a prune by its retention policy)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Protocol

from server.model.errors import Busy
from server.model.records import Operation, OperationKind, OperationStatus, RestorePointOrigin, Schedule
from server.operations.live import OperationContext
from server.operations.runner import OperationRunner
from server.services.restore_points import RestorePointService
from server.services.schedules.copies import ScheduledCopies
from server.services.schedules.heartbeat import Heartbeat
from server.services.schedules.service import ScheduleService, next_run, render_label
from server.services.verification.service import VerificationService

log = logging.getLogger(__name__)


def requester(schedule: Schedule) -> str:
    """Who a scheduled operation says asked for it."""
    return f"schedule:{schedule.name}"


def at_text(moment: datetime | None) -> str:
    """A moment as a log line gives it."""
    return moment.isoformat(timespec="seconds") if moment else "an unknown time"


async def ended(runner: OperationRunner, op_id: str) -> Operation | None:
    """Wait for an operation to end; the operation as it ended."""
    live = runner.live(op_id)
    if live is not None:
        await live.ended.wait()
        return live.op
    return await runner.history.get(op_id)


class StartPrune(Protocol):
    """Starts a schedule's PRUNE_RESTORE_POINTS operation (pruning.py)."""

    def __call__(
        self, schedule: Schedule, requested_by: str | None = None, note: str | None = None
    ) -> Awaitable[Operation]: ...


class ScheduleRuns:
    """Starts schedules' runs, one at a time per schedule, and follows each to its end."""

    def __init__(
        self,
        *,
        schedules: ScheduleService,
        restore_points: RestorePointService,
        runner: OperationRunner,
        copies: ScheduledCopies | None,
        start_prune: StartPrune,
        wake: Callable[[], None],
        heartbeat: Heartbeat | None = None,
        verification: VerificationService | None = None,
    ) -> None:
        self._verification = verification  # a verification schedule's runs
        self._heartbeat = heartbeat or Heartbeat(None)
        self._schedules = schedules
        self._restore_points = restore_points
        self._runner = runner
        self._copies = copies
        self._start_prune = start_prune
        self._wake = wake  # the loop looks again: a run that waited for this one may start now
        self._active: dict[str, asyncio.Task[None]] = {}  # schedule id -> its run (and prune) under way
        self._starting: set[str] = set()  # schedule ids whose run is being submitted
        self._asked: set[str] = set()  # the ids runSchedule is starting a run of, as asked
        self._active_op: dict[str, str] = {}  # schedule id -> the id of that run's operation

    def busy(self, schedule_id: str) -> bool:
        """Whether a run (or a prune) of this schedule is starting or under way."""
        return schedule_id in self._active or schedule_id in self._starting

    async def stop(self) -> None:
        """Stop following the runs under way (they are the runner's to stop), and the pings."""
        for task in list(self._active.values()):
            task.cancel()
        await asyncio.gather(*self._active.values(), return_exceptions=True)
        await self._heartbeat.stop()

    async def run_now(self, schedule_id: str) -> Operation:
        """runSchedule: start a run at once (BUSY while its previous run goes or an apply holds)."""
        # Claimed before the first await: of two runSchedule at once, the second is BUSY even
        # when the first one's whole run ends while the second still reads the schedule.
        if schedule_id in self._asked:
            schedule = await self._schedules.require(schedule_id)
            raise Busy(f"a run of schedule {schedule.name!r} is starting; try again after it", field="id")
        self._asked.add(schedule_id)
        try:
            return await self._run_now(schedule_id)
        finally:
            self._asked.discard(schedule_id)

    async def _run_now(self, schedule_id: str) -> Operation:
        schedule = await self._schedules.require(schedule_id)
        if (task := self._active.get(schedule.id)) is not None:
            live = self._runner.live(self._active_op.get(schedule.id, ""))
            # Done, not ended: a run whose final state readers already see (SUCCEEDED) while it
            # is still being written is over for the user, who may well click "Run now" then.
            if live is not None and not live.op.done:
                raise Busy(
                    f"the previous run of schedule {schedule.name!r} is still going; try again after it", field="id"
                )
            await asyncio.shield(task)  # that run is done: only its final write and bookkeeping (prune) are left
            schedule = await self._schedules.require(schedule_id)
        notes = [f"Run of schedule {schedule.name!r} ({schedule.id}) started by runSchedule."]
        return await self.start(schedule, self._schedules.now(), notes, keep_next=True)

    async def start(
        self,
        schedule: Schedule,
        now: datetime,
        notes: list[str],
        *,
        keep_next: bool = False,
        changed_by: str | None = None,
    ) -> Operation:
        """Start a run whose log opens with `notes`; its next run is counted from `now` (kept
        as it is with `keep_next`). `changed_by`: what changed the configuration, for an
        after-change run (kept in its params as changedBy, for notifications). BUSY while a run
        of the schedule starts or an apply holds."""
        # Marked before the first await: a tick and a runSchedule at once must not both start one.
        if schedule.id in self._starting or schedule.id in self._active:
            raise Busy(f"a run of schedule {schedule.name!r} is starting; try again after it", field="id")
        self._starting.add(schedule.id)
        try:
            return await self._submit(schedule, now, notes, keep_next=keep_next, changed_by=changed_by)
        finally:
            self._starting.discard(schedule.id)

    async def prune_on_timer(self, schedule: Schedule) -> None:
        """Start the retention timer's prune of a schedule, counted as its run under way."""
        self._starting.add(schedule.id)
        try:
            prune = await self._start_prune(schedule, note="Pruned on the retention timer.")
        except Busy:
            return  # an apply started meanwhile: the next tick tries again
        finally:
            self._starting.discard(schedule.id)
        self._active_op[schedule.id] = prune.id
        self._active[schedule.id] = asyncio.create_task(self._after_prune(schedule.id, prune.id))

    async def _submit(
        self, schedule: Schedule, now: datetime, notes: list[str], *, keep_next: bool, changed_by: str | None
    ) -> Operation:
        if schedule.verification is not None:
            op = await self._submit_verification(schedule, notes)
        else:
            op = await self._submit_backup(schedule, now, notes, changed_by=changed_by)
        following = schedule.next_run_at if keep_next else next_run(schedule, now)
        await self._schedules.save_state(
            dataclasses.replace(schedule, next_run_at=following, last_run_at=now, last_operation_id=op.id)
        )
        self._active_op[schedule.id] = op.id
        self._active[schedule.id] = asyncio.create_task(self._after(schedule.id, op.id), name=f"schedule-{schedule.id}")
        return op

    async def _submit_verification(self, schedule: Schedule, notes: list[str]) -> Operation:
        """A verification schedule's run: a VERIFY_BACKUPS of every restore point, those verified
        within its outdatedAfterDays skipped."""
        wanted = schedule.verification
        assert wanted is not None and self._verification is not None
        return await self._verification.start(
            restore_point_ids=None,
            copies=wanted.copies,
            read_percent=wanted.read_percent,
            requested_by=requester(schedule),
            outdated_after_days=wanted.outdated_after_days,
            notes=notes,
            params={"scheduleId": schedule.id},
        )

    async def _submit_backup(
        self, schedule: Schedule, now: datetime, notes: list[str], *, changed_by: str | None
    ) -> Operation:
        label = render_label(schedule, now)
        by = requester(schedule)

        async def job(ctx: OperationContext) -> None:
            for note in notes:
                ctx.log(note)
            copies = self._copies if schedule.copy_to_locations else None
            point = await self._restore_points.capture(
                ctx.section(0.0, 0.5) if copies is not None else ctx,
                label=label,
                note=None,
                origin=RestorePointOrigin.SCHEDULED,
                created_by=by,
                schedule_id=schedule.id,
            )
            if copies is not None:
                await copies.copy(ctx.section(0.5, 1.0), point, schedule)

        return await self._runner.submit(
            OperationKind.CREATE_RESTORE_POINT,
            job,
            requested_by=by,
            params={"label": label, "note": None, "scheduleId": schedule.id}
            | ({"changedBy": changed_by} if changed_by is not None else {}),
        )

    async def _after(self, schedule_id: str, op_id: str) -> None:
        """Wait for the run to end, record its success, then prune by the schedule's policy."""
        try:
            final = await ended(self._runner, op_id)
            backups = final is None or final.kind is OperationKind.CREATE_RESTORE_POINT
            if backups and final is not None and final.status in (OperationStatus.SUCCEEDED, OperationStatus.FAILED):
                # In a task of its own: a slow or dead watcher holds up neither this nor the prune.
                # Only backups ping: a verification's success says nothing of the backups.
                self._heartbeat.ping(succeeded=final.status is OperationStatus.SUCCEEDED)
            schedule = await self._schedules.get(schedule_id)
            if schedule is None:
                await self._schedules.unlink_restore_points(schedule_id)  # deleted while it ran
                return
            if final is not None and final.status is OperationStatus.CANCELLED and final.params.get("preempted"):
                # Stopped for an apply: due again now, so it runs once the apply has ended.
                await self._schedules.save_state(dataclasses.replace(schedule, next_run_at=self._schedules.now()))
            if final is not None and final.status is OperationStatus.SUCCEEDED:
                # The server's clock, as for lastRunAt (an operation's own times are the system's).
                await self._schedules.save_state(dataclasses.replace(schedule, last_success_at=self._schedules.now()))
                if schedule.retention.limited:
                    prune = await self._start_prune(schedule)
                    await ended(self._runner, prune.id)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("schedule %s: could not finish after run %s", schedule_id, op_id)
        finally:
            if self._active.get(schedule_id) is asyncio.current_task():
                del self._active[schedule_id]
            self._wake()  # a run that waited for this one may start now

    async def _after_prune(self, schedule_id: str, op_id: str) -> None:
        try:
            await ended(self._runner, op_id)
        finally:
            if self._active.get(schedule_id) is asyncio.current_task():
                del self._active[schedule_id]
            self._wake()
