"""Runs schedules: a loop that reads the clock, starts each due run as an ordinary create
operation (runs.py), then prunes by the schedule's retention policy (pruning.py).

Semantics (docs/configuration/schedules.md):
- Creating, changing or resuming a schedule never runs it; its next run is the next cron time.
- A run missed while the server was down runs once at start-up, never once per missed time.
- A run that comes due while an apply holds the system, or while the previous run of the same
  schedule (or its prune) is still going, waits and runs once afterwards; its log says so.
- The next run is always counted from the present: a clock jumping forward gives one run,
  not a burst; a clock jumping back brings the next run back to the cron's next time.
- Retention runs after every successful run and on a timer (pruning.PRUNE_EVERY), whose last
  run is stored with the schedule (`last_pruned_at`), so restarts never reset it.
- A schedule with afterChangeQuietSeconds also runs once the configuration has been quiet that
  long after a change (after_change.py, changes.py), and only when its fingerprint differs from
  the newest restore point's: a burst of changes makes one restore point, a change undone
  makes none.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from server.model.errors import Busy
from server.model.records import Operation, Schedule
from server.operations.runner import OperationRunner
from server.services.restore_points import RestorePointService
from server.services.schedules.after_change import AfterChange, wants_changes
from server.services.schedules.changes import ChangeWatch
from server.services.schedules.copies import ScheduledCopies
from server.services.schedules.expiry import ExpiryTimer
from server.services.schedules.heartbeat import Heartbeat
from server.services.schedules.pruning import Pruning
from server.services.schedules.runs import ScheduleRuns, at_text
from server.services.schedules.service import ScheduleService, next_run
from server.services.verification.service import VerificationService
from server.test_seams import StepControl

log = logging.getLogger(__name__)


@dataclass
class _Waiting:
    due_at: datetime
    reason: str


class Scheduler:
    """The scheduling loop, and running a schedule by hand (runSchedule)."""

    def __init__(
        self,
        *,
        schedules: ScheduleService,
        restore_points: RestorePointService,
        runner: OperationRunner,
        poll_seconds: float,
        changes: ChangeWatch,
        safety_max_age_days: int,
        steps: StepControl | None = None,
        copies: ScheduledCopies | None = None,
        expiry: ExpiryTimer | None = None,
        heartbeat: Heartbeat | None = None,
        verification: VerificationService | None = None,
    ) -> None:
        self._expiry = expiry  # restore points that expire: a timer of its own (expiry.py)
        self._schedules = schedules
        self._changes = changes
        self._runner = runner
        self._poll = poll_seconds
        self._task: asyncio.Task[None] | None = None
        self._started_at: datetime | None = None
        self._waiting: dict[str, _Waiting] = {}
        self._wake = asyncio.Event()
        # When the loop must look again before its next poll: the end of a quiet period after a
        # change, or the next periodic fingerprint check (a change's run never waits for a poll).
        self._look_again_at: datetime | None = None
        self._wakers: dict[str, asyncio.Task[None]] = {}  # operation id -> a wake-up at its end
        self._pruning = Pruning(
            schedules=schedules,
            restore_points=restore_points,
            runner=runner,
            safety_max_age_days=safety_max_age_days,
            steps=steps or StepControl(),
        )
        self._runs = ScheduleRuns(
            schedules=schedules,
            restore_points=restore_points,
            runner=runner,
            copies=copies,
            start_prune=self._pruning.start_prune,
            wake=self.wake,
            heartbeat=heartbeat,
            verification=verification,
        )
        self._after_change = AfterChange(
            changes=changes,
            restore_points=restore_points,
            blocker=self._blocker,
            start_run=self._runs.start,
            look_again_by=self._look_again_by,
            wake=self.wake,
        )
        schedules.on_saved(self._after_change.schedule_saved)
        changes.on_note(self._after_change.change_noted)

    @property
    def changes(self) -> ChangeWatch:
        """What tells after-change schedules that the configuration changed."""
        return self._changes

    # -- life cycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Start the loop; its first look at the clock catches up on a run missed while stopped."""
        self._started_at = self._schedules.now()
        self._task = asyncio.create_task(self._loop(), name="scheduler")
        if self._expiry is not None:
            self._expiry.start()

    async def stop(self) -> None:
        """Stop the loop (runs under way are the runner's to stop)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._expiry is not None:
            await self._expiry.stop()
        await self._changes.stop()
        self._pruning.cancel()
        for waker in list(self._wakers.values()):
            waker.cancel()
        await self._runs.stop()

    def wake(self) -> None:
        """Look at the schedules now rather than at the next poll (a schedule changed)."""
        self._wake.set()

    async def _loop(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:
                log.exception("the scheduler could not look at the schedules; it tries again")
            with contextlib.suppress(TimeoutError):  # no wake-up: the poll interval (or a quiet period) passed
                await asyncio.wait_for(self._wake.wait(), self._until_next_look())
            self._wake.clear()

    def _until_next_look(self) -> float:
        """Seconds until the loop looks again without being woken: the poll interval, or less."""
        if self._look_again_at is None:
            return self._poll
        due_in = (self._look_again_at - self._schedules.now()).total_seconds()
        return min(self._poll, max(due_in, 0.01))

    def _look_again_by(self, at: datetime) -> None:
        if self._look_again_at is None or at < self._look_again_at:
            self._look_again_at = at

    # -- one look at the clock -------------------------------------------------------------

    async def tick(self) -> None:
        """Start every run that is due now, and keep each next run in step with the clock."""
        now = self._schedules.now()
        self._look_again_at = None
        schedules = await self._schedules.list_all()
        await self._pruning.safety_if_due(now)
        await self._after_change.look([s for s in schedules if wants_changes(s)], now, started_at=self._started_at)
        for schedule in schedules:
            await self._prune_if_due(schedule, now)
            if not schedule.enabled or schedule.cron is None:
                continue
            if schedule.next_run_at is None:
                await self._schedules.save_state(dataclasses.replace(schedule, next_run_at=next_run(schedule, now)))
                continue
            if schedule.next_run_at > now:
                slot = next_run(dataclasses.replace(schedule, jitter_seconds=0), now)
                if slot is not None and (schedule.next_run_at - timedelta(seconds=schedule.jitter_seconds)) > slot:
                    # The clock went back: the stored time is further away than the cron's next.
                    log.info("schedule %s: the clock went back; next run moved to %s", schedule.name, slot)
                    await self._schedules.save_state(dataclasses.replace(schedule, next_run_at=next_run(schedule, now)))
                continue
            await self._due(schedule, now)

    async def _due(self, schedule: Schedule, now: datetime) -> None:
        reason = self._blocker(schedule)
        if reason is not None:
            if schedule.id not in self._waiting:
                log.info("schedule %s is due but waits: %s", schedule.name, reason)
                self._waiting[schedule.id] = _Waiting(schedule.next_run_at or now, reason)
            return
        notes = [
            f"Scheduled run of schedule {schedule.name!r} ({schedule.id}), due at {at_text(schedule.next_run_at)}."
        ]
        waited = self._waiting.pop(schedule.id, None)
        if waited is not None:
            notes.append(f"It came due at {at_text(waited.due_at)} while {waited.reason}; it waited and runs once now.")
        elif self._started_at is not None and schedule.next_run_at and schedule.next_run_at < self._started_at:
            notes.append("It came due while the server was stopped; it runs once now (missed runs are not repeated).")
        try:
            await self._runs.start(schedule, now, notes)
        except Busy as busy:  # an apply started between the check and the submit
            self._waiting.setdefault(schedule.id, _Waiting(schedule.next_run_at or now, busy.message))

    async def _prune_if_due(self, schedule: Schedule, now: datetime) -> None:
        """The retention timer (pruning.py), for a schedule with no run or apply under way."""
        if not schedule.enabled or not schedule.retention.limited or self._blocker(schedule) is not None:
            return
        if await self._pruning.due(schedule, now):
            await self._runs.prune_on_timer(schedule)

    def _blocker(self, schedule: Schedule) -> str | None:
        """Why a due run must wait now, or None."""
        if (apply := self._runner.exclusive_operation()) is not None:
            self._wake_at_end_of(apply)
            return f"operation {apply} was applying a restore point"
        if self._runs.busy(schedule.id):
            return "the previous run of this schedule was still going"
        return None

    def _wake_at_end_of(self, op_id: str) -> None:
        """Look again as soon as this operation ends (a run waits for it), not at the next poll."""
        live = self._runner.live(op_id)
        if live is None or op_id in self._wakers:
            return

        async def wake_at_end() -> None:
            try:
                await live.ended.wait()
            finally:
                self._wakers.pop(op_id, None)
                self.wake()

        self._wakers[op_id] = asyncio.create_task(wake_at_end(), name=f"scheduler-wakes-after-{op_id}")

    # -- asked for by the API ------------------------------------------------------------------

    async def run_now(self, schedule_id: str) -> Operation:
        """runSchedule: start a run at once (BUSY while its previous run goes or an apply holds)."""
        return await self._runs.run_now(schedule_id)

    async def start_prune(
        self, schedule: Schedule, requested_by: str | None = None, note: str | None = None
    ) -> Operation:
        """Start the PRUNE_RESTORE_POINTS operation of this schedule (pruneSchedule)."""
        return await self._pruning.start_prune(schedule, requested_by=requested_by, note=note)
