"""Runs schedules: a loop that reads the clock, starts each due run as an ordinary create
operation, then prunes by the schedule's retention policy.

Semantics (README "Schedules and retention"):
- Creating, changing or resuming a schedule never runs it; its next run is the next cron time.
- A run missed while the server was down runs once at start-up, never once per missed time.
- A run that comes due while an apply holds the system, or while the previous run of the same
  schedule (or its prune) is still going, waits and runs once afterwards; its log says so.
- The next run is always counted from the present: a clock jumping forward gives one run,
  not a burst; a clock jumping back brings the next run back to the cron's next time.
- Retention runs after every successful run and on a timer (PRUNE_EVERY), whose last run is
  stored with the schedule (`last_pruned_at`), so restarts never reset it.
- A schedule with afterChangeQuietSeconds also runs once the configuration has been quiet that
  long after a change (server/services/schedules/changes.py), and only when its fingerprint
  differs from the newest restore point's: a burst of changes makes one restore point, a
  change undone makes none.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from server.model.errors import Busy, NotFound
from server.model.pruning.retention import RetentionDecision
from server.model.pruning.safety_age import expired_safety
from server.model.records import (
    Operation,
    OperationKind,
    OperationStatus,
    RestorePointFilter,
    RestorePointOrigin,
    RetentionPolicy,
    Schedule,
)
from server.operations.live import OperationContext
from server.operations.runner import OperationRunner
from server.services.restore_points import RestorePointService
from server.services.schedules.changes import ChangeWatch
from server.services.schedules.copies import ScheduledCopies
from server.services.schedules.deletion import delete_logged
from server.services.schedules.expiry import ExpiryTimer
from server.services.schedules.service import KEEP_FIELDS, ScheduleService, next_run, render_label
from server.test_seams import StepControl

log = logging.getLogger(__name__)

# Who asks for the prune of safety restore points past their age limit when no schedule's did.
SAFETY_REQUESTER = "server:safety-age-limit"
# How often retention runs besides after each run: day-based rules (keepWithinDays, keepDaily)
# delete restore points as they age, whether or not the schedule runs.
PRUNE_EVERY = timedelta(hours=1)


def requester(schedule: Schedule) -> str:
    """Who a scheduled operation says asked for it."""
    return f"schedule:{schedule.name}"


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
    ) -> None:
        self._expiry = expiry  # restore points that expire: a timer of its own (expiry.py)
        self._steps = steps or StepControl()  # a test's pause (BACKUPS_TEST_PAUSE_AT=prune-deleted)
        self._safety_max_age_days = safety_max_age_days
        self._safety_checked_at: datetime | None = None  # checked at every start, then hourly
        self._safety_prune: asyncio.Task[None] | None = None
        self._schedules = schedules
        self._copies = copies
        self._changes = changes
        self._change_seen: dict[str, int] = {}  # schedule id -> the change it last looked at
        self._restore_points = restore_points
        self._runner = runner
        self._poll = poll_seconds
        self._task: asyncio.Task[None] | None = None
        self._started_at: datetime | None = None
        self._active: dict[str, asyncio.Task[None]] = {}  # schedule id -> its run (and prune) under way
        self._starting: set[str] = set()  # schedule ids whose run is being submitted
        self._active_op: dict[str, str] = {}  # schedule id -> the id of that run's operation
        self._waiting: dict[str, _Waiting] = {}
        self._wake = asyncio.Event()
        # When the loop must look again before its next poll: the end of a quiet period after a
        # change, or the next periodic fingerprint check (a change's run never waits for a poll).
        self._look_again_at: datetime | None = None
        self._wanting_changes = False  # whether some enabled schedule has afterChangeQuietSeconds
        self._wakers: dict[str, asyncio.Task[None]] = {}  # operation id -> a wake-up at its end
        schedules.on_saved(self._schedule_saved)
        changes.on_note(self._change_noted)

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
        if self._safety_prune is not None:
            self._safety_prune.cancel()
        for waker in list(self._wakers.values()):
            waker.cancel()
        for task in list(self._active.values()):
            task.cancel()
        await asyncio.gather(*self._active.values(), return_exceptions=True)

    def wake(self) -> None:
        """Look at the schedules now rather than at the next poll (a schedule changed)."""
        self._wake.set()

    def _schedule_saved(self, schedule_id: str, before: Schedule | None, after: Schedule | None) -> None:
        """A schedule was created, changed or deleted: one that starts wanting changes now
        (created, given afterChangeQuietSeconds, resumed) counts every change from the moment it
        was saved, whenever the loop looks next; then the loop looks at once."""
        if after is None or not _wants_changes(after):
            self._change_seen.pop(schedule_id, None)
        elif before is None or not _wants_changes(before):
            self._change_seen[schedule_id] = self._seen_when_saved(after)
        self.wake()

    def _seen_when_saved(self, schedule: Schedule) -> int:
        """The changes a schedule that starts wanting them has seen: all but one noticed after
        it was saved (during its commit), so that one is looked at."""
        changes = self._changes
        return changes.version - 1 if changes.changed_at > schedule.updated_at else changes.version

    def _change_noted(self) -> None:
        if self._wanting_changes:
            self.wake()  # to time the quiet period from this change

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
        await self._safety_if_due(now)
        await self._look_at_changes([s for s in schedules if _wants_changes(s)], now)
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
        notes = [f"Scheduled run of schedule {schedule.name!r} ({schedule.id}), due at {_at(schedule.next_run_at)}."]
        waited = self._waiting.pop(schedule.id, None)
        if waited is not None:
            notes.append(f"It came due at {_at(waited.due_at)} while {waited.reason}; it waited and runs once now.")
        elif self._started_at is not None and schedule.next_run_at and schedule.next_run_at < self._started_at:
            notes.append("It came due while the server was stopped; it runs once now (missed runs are not repeated).")
        try:
            await self._start_run(schedule, now, notes)
        except Busy as busy:  # an apply started between the check and the submit
            self._waiting.setdefault(schedule.id, _Waiting(schedule.next_run_at or now, busy.message))

    async def _look_at_changes(self, wanting: list[Schedule], now: datetime) -> None:
        """Start the after-change run of each schedule whose quiet period after a change has passed."""
        for gone in self._change_seen.keys() - {s.id for s in wanting}:
            del self._change_seen[gone]  # paused: resumed, it waits for the next change (never runs at once)
        self._wanting_changes = bool(wanting)
        if not wanting:
            return
        self._changes.watch_folders()
        await self._changes.check_if_due()
        if self._changes.checked_at is not None:
            self._look_again_by(self._changes.checked_at + timedelta(seconds=self._changes.check_seconds))
        for schedule in wanting:
            await self._after_change(schedule, now)

    async def _after_change(self, schedule: Schedule, now: datetime) -> None:
        changes = self._changes
        seen = self._change_seen.get(schedule.id)
        if seen is None:
            # One there at start-up looks once (a change made while stopped); one created,
            # resumed or given afterChangeQuietSeconds since (by another server on the same
            # database, or saved while this loop listed the schedules) waits for the next change
            # after it was saved: it never runs at once, and misses no change made after.
            existed = self._started_at is not None and schedule.updated_at < self._started_at
            seen = self._change_seen[schedule.id] = 0 if existed else self._seen_when_saved(schedule)
        quiet = schedule.after_change_quiet_seconds or 0
        if changes.version <= seen:
            return
        quiet_from = changes.changed_at + timedelta(seconds=quiet)
        if now < quiet_from:
            self._look_again_by(quiet_from)  # not at the next poll: the run is due then
            return
        if self._blocker(schedule) is not None:
            return  # looks again once that run or apply has ended (its end wakes the loop)
        version, changed_at, seen_by = changes.version, changes.changed_at, changes.seen_by
        try:
            fingerprint = await changes.fingerprint()
        except Exception as error:
            log.warning("schedule %s: the configuration could not be read after a change: %s", schedule.name, error)
            self._change_seen[schedule.id] = version
            return
        self._change_seen[schedule.id] = version
        newest = (await self._restore_points.page(first=1, after=None)).items
        if newest and newest[0].checksum == fingerprint:
            log.info("schedule %s: the configuration is the newest restore point's again; none made", schedule.name)
            return
        notes = [
            f"Run of schedule {schedule.name!r} ({schedule.id}) triggered by a change of the configuration "
            f"(the last one seen by {seen_by}, at {_at(changed_at)}): quiet for {quiet} s since, and its "
            f"fingerprint {fingerprint} "
            + (f"differs from the newest restore point's ({newest[0].id})." if newest else "is in no restore point.")
        ]
        with contextlib.suppress(Busy):  # a runSchedule got in first: that run holds this change
            await self._start_run(schedule, now, notes, keep_next=True)

    async def _prune_if_due(self, schedule: Schedule, now: datetime) -> None:
        """The retention timer: prune once PRUNE_EVERY has passed since the last prune (stored)."""
        if not schedule.enabled or not schedule.retention.limited or self._blocker(schedule) is not None:
            return
        # Counted from the last prune, or from the schedule's last change: as changing a schedule
        # never runs it at once, giving it a retention policy never prunes at once.
        since = max(schedule.updated_at, schedule.last_pruned_at or schedule.updated_at)
        if now - since < PRUNE_EVERY:
            return
        if all(d.keep for d in await self._schedules.retention_preview(schedule.id)):
            await self._schedules.mark_pruned(schedule.id, now)  # nothing to delete: no operation for it
            return
        self._starting.add(schedule.id)
        try:
            prune = await self.start_prune(schedule, note="Pruned on the retention timer.")
        except Busy:
            return  # an apply started meanwhile: the next tick tries again
        finally:
            self._starting.discard(schedule.id)
        self._active_op[schedule.id] = prune.id
        self._active[schedule.id] = asyncio.create_task(self._after_prune(schedule.id, prune.id))

    async def _safety_if_due(self, now: datetime) -> None:
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
            await self._ended(op_id)
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

    async def _after_prune(self, schedule_id: str, op_id: str) -> None:
        try:
            await self._ended(op_id)
        finally:
            if self._active.get(schedule_id) is asyncio.current_task():
                del self._active[schedule_id]
            self.wake()

    def _blocker(self, schedule: Schedule) -> str | None:
        """Why a due run must wait now, or None."""
        if (apply := self._runner.exclusive_operation()) is not None:
            self._wake_at_end_of(apply)
            return f"operation {apply} was applying a restore point"
        if schedule.id in self._active or schedule.id in self._starting:
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

    # -- running ---------------------------------------------------------------------------

    async def run_now(self, schedule_id: str) -> Operation:
        """runSchedule: start a run at once (BUSY while its previous run goes or an apply holds)."""
        schedule = await self._schedules.require(schedule_id)
        if (task := self._active.get(schedule.id)) is not None:
            live = self._runner.live(self._active_op.get(schedule.id, ""))
            if live is not None and not live.ended.is_set():
                raise Busy(
                    f"the previous run of schedule {schedule.name!r} is still going; try again after it", field="id"
                )
            await asyncio.shield(task)  # that run has ended: only its bookkeeping (and prune) is left
            schedule = await self._schedules.require(schedule_id)
        notes = [f"Run of schedule {schedule.name!r} ({schedule.id}) started by runSchedule."]
        return await self._start_run(schedule, self._schedules.now(), notes, keep_next=True)

    async def _start_run(
        self, schedule: Schedule, now: datetime, notes: list[str], *, keep_next: bool = False
    ) -> Operation:
        # Marked before the first await: a tick and a runSchedule at once must not both start one.
        if schedule.id in self._starting or schedule.id in self._active:
            raise Busy(f"a run of schedule {schedule.name!r} is starting; try again after it", field="id")
        self._starting.add(schedule.id)
        try:
            return await self._submit_run(schedule, now, notes, keep_next=keep_next)
        finally:
            self._starting.discard(schedule.id)

    async def _submit_run(self, schedule: Schedule, now: datetime, notes: list[str], *, keep_next: bool) -> Operation:
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

        op = await self._runner.submit(
            OperationKind.CREATE_RESTORE_POINT,
            job,
            requested_by=by,
            params={"label": label, "note": None, "scheduleId": schedule.id},
        )
        following = schedule.next_run_at if keep_next else next_run(schedule, now)
        await self._schedules.save_state(
            dataclasses.replace(schedule, next_run_at=following, last_run_at=now, last_operation_id=op.id)
        )
        self._active_op[schedule.id] = op.id
        self._active[schedule.id] = asyncio.create_task(self._after(schedule.id, op.id), name=f"schedule-{schedule.id}")
        return op

    async def _after(self, schedule_id: str, op_id: str) -> None:
        """Wait for the run to end, record its success, then prune by the schedule's policy."""
        try:
            final = await self._ended(op_id)
            schedule = await self._schedules.get(schedule_id)
            if schedule is None:
                await self._schedules.unlink_restore_points(schedule_id)  # deleted while it ran
                return
            if final is not None and final.status is OperationStatus.SUCCEEDED:
                # The server's clock, as for lastRunAt (an operation's own times are the system's).
                await self._schedules.save_state(dataclasses.replace(schedule, last_success_at=self._schedules.now()))
                if schedule.retention.limited:
                    prune = await self.start_prune(schedule)
                    await self._ended(prune.id)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("schedule %s: could not finish after run %s", schedule_id, op_id)
        finally:
            if self._active.get(schedule_id) is asyncio.current_task():
                del self._active[schedule_id]
            self.wake()  # a run that waited for this one may start now

    async def _ended(self, op_id: str) -> Operation | None:
        live = self._runner.live(op_id)
        if live is not None:
            await live.ended.wait()
            return live.op
        return await self._runner.history.get(op_id)

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
            f"Deleted restore point {point.id} ({point.label!r}, made {_at(point.created_at)}): "
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


def _wants_changes(schedule: Schedule) -> bool:
    """Whether the schedule runs after changes now (enabled, with afterChangeQuietSeconds)."""
    return schedule.enabled and bool(schedule.after_change_quiet_seconds)


def policy_text(policy: RetentionPolicy) -> str:
    """The policy's rules as written in the API, e.g. "keepLast=3, keepDaily=7"."""
    rules = [f"{KEEP_FIELDS[f.name]}={getattr(policy, f.name)}" for f in dataclasses.fields(policy)]
    rules = [
        rule for rule, f in zip(rules, dataclasses.fields(policy), strict=True) if getattr(policy, f.name) is not None
    ]
    return ", ".join(rules) or "no limit"


def _at(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment else "an unknown time"
