"""After-change runs: a schedule with afterChangeQuietSeconds runs once the configuration has
been quiet that long after a change (noticed by changes.py), and only when its fingerprint
differs from the newest restore point's: a burst of changes makes one restore point, a change
undone makes none. A schedule that starts wanting changes (created, given
afterChangeQuietSeconds, resumed) never runs at once: it counts the changes made from the
moment it was saved."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Protocol

from server.model.errors import Busy
from server.model.records import Operation, Schedule
from server.services.restore_points import RestorePointService
from server.services.schedules.changes import ChangeWatch
from server.services.schedules.runs import at_text

log = logging.getLogger(__name__)


class StartRun(Protocol):
    """Starts a schedule's run whose log opens with `notes` (ScheduleRuns.start)."""

    def __call__(
        self,
        schedule: Schedule,
        now: datetime,
        notes: list[str],
        *,
        keep_next: bool = False,
        changed_by: str | None = None,
    ) -> Awaitable[Operation]: ...


def wants_changes(schedule: Schedule) -> bool:
    """Whether the schedule runs after changes now (enabled, with afterChangeQuietSeconds)."""
    return schedule.enabled and bool(schedule.after_change_quiet_seconds)


class AfterChange:
    """Which changes each after-change schedule has looked at, and starting its run when one
    has been quiet long enough. The loop asks it at every look (`look`)."""

    def __init__(
        self,
        *,
        changes: ChangeWatch,
        restore_points: RestorePointService,
        blocker: Callable[[Schedule], str | None],
        start_run: StartRun,
        look_again_by: Callable[[datetime], None],
        wake: Callable[[], None],
    ) -> None:
        self._changes = changes
        self._restore_points = restore_points
        self._blocker = blocker  # why a run must wait now (the loop's), or None
        self._start_run = start_run
        self._look_again_by = look_again_by  # the loop looks again by then, not at its next poll
        self._wake = wake
        self._change_seen: dict[str, int] = {}  # schedule id -> the change it last looked at
        self._wanting_changes = False  # whether some enabled schedule has afterChangeQuietSeconds

    def schedule_saved(self, schedule_id: str, before: Schedule | None, after: Schedule | None) -> None:
        """A schedule was created, changed or deleted: one that starts wanting changes now
        (created, given afterChangeQuietSeconds, resumed) counts every change from the moment it
        was saved, whenever the loop looks next; then the loop looks at once."""
        if after is None or not wants_changes(after):
            self._change_seen.pop(schedule_id, None)
        elif before is None or not wants_changes(before):
            self._change_seen[schedule_id] = self._seen_when_saved(after)
        self._wake()

    def change_noted(self) -> None:
        if self._wanting_changes:
            self._wake()  # to time the quiet period from this change

    def _seen_when_saved(self, schedule: Schedule) -> int:
        """The changes a schedule that starts wanting them has seen: all but one noticed after
        it was saved (during its commit), so that one is looked at."""
        changes = self._changes
        return changes.version - 1 if changes.changed_at > schedule.updated_at else changes.version

    async def look(self, wanting: list[Schedule], now: datetime, *, started_at: datetime | None) -> None:
        """Start the after-change run of each schedule whose quiet period after a change has
        passed (`started_at`: when the loop started)."""
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
            await self._after_change(schedule, now, started_at)

    async def _after_change(self, schedule: Schedule, now: datetime, started_at: datetime | None) -> None:
        changes = self._changes
        seen = self._change_seen.get(schedule.id)
        if seen is None:
            # One there at start-up looks once (a change made while stopped); one created,
            # resumed or given afterChangeQuietSeconds since (by another server on the same
            # database, or saved while this loop listed the schedules) waits for the next change
            # after it was saved: it never runs at once, and misses no change made after.
            existed = started_at is not None and schedule.updated_at < started_at
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
            f"(the last one seen by {seen_by}, at {at_text(changed_at)}): quiet for {quiet} s since, and its "
            f"fingerprint {fingerprint} "
            + (f"differs from the newest restore point's ({newest[0].id})." if newest else "is in no restore point.")
        ]
        with contextlib.suppress(Busy):  # a runSchedule got in first: that run holds this change
            await self._start_run(schedule, now, notes, keep_next=True, changed_by=seen_by)
