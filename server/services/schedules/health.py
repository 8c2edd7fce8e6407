"""Backup health for monitoring, from the schedules and their last runs: a schedule whose
last run failed is CRITICAL; one whose last success (or, never having succeeded, its
creation) is older than twice its period is a WARNING, and so is one whose last run could
not copy its restore point to a location (copyToLocations). Paused schedules are not judged.
Each problem names its subject (a schedule, a location) so that a client can link it."""

from __future__ import annotations

import asyncio
import dataclasses
import enum
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from server.model.cron_times import next_fire
from server.model.records import (
    Operation,
    OperationKind,
    OperationStatus,
    RestorePointFilter,
    RestorePointOrigin,
    Schedule,
)
from server.model.verification import VerifiedKind
from server.operations.runner import OperationRunner
from server.services.restore_points import RestorePointService
from server.services.schedules.service import ScheduleService
from server.services.verification.service import VerificationService

# How long a change of any operation is let settle before health is read again: progress
# steps fire many changes a second, health needs one look.
SETTLE_SECONDS = 0.2

# The origins whose restore points count as a success: an imported restore point is a copy of
# one made at another time, maybe on another machine, not a fresh backup of this system. A
# safety restore point (made before an apply) is a real capture of the system as it was.
COUNTED_ORIGINS = tuple(origin for origin in RestorePointOrigin if origin is not RestorePointOrigin.IMPORTED)

# How far back /metrics looks for the newest run that meant a copy for a location: at most
# this many succeeded CREATE_RESTORE_POINT operations, so a scrape costs the same at any history size.
COPY_LOOKBACK_RUNS = 500
_PAGE = 100


class HealthStatus(enum.StrEnum):
    OK = "OK"
    WARNING = "WARNING"
    CRITICAL = "CRITICAL"


class HealthSubjectKind(enum.StrEnum):
    """What a health problem is about; its subject id is that thing's id (a location: its name)."""

    SCHEDULE = "SCHEDULE"
    LOCATION = "LOCATION"
    RESTORE_POINT = "RESTORE_POINT"
    SOURCE = "SOURCE"
    LOCAL_COPY = "LOCAL_COPY"
    REMOTE_COPY = "REMOTE_COPY"
    VERIFICATION = "VERIFICATION"  # its subject id: "verifyBackups"


@dataclass(frozen=True, slots=True)
class HealthProblem:
    status: HealthStatus  # WARNING or CRITICAL: what this problem alone makes the health
    message: str
    subject_kind: HealthSubjectKind
    subject_id: str
    operation_id: str | None = None  # the run it is about, when it is about one


@dataclass(frozen=True, slots=True)
class BackupHealth:
    status: HealthStatus
    issues: tuple[HealthProblem, ...]
    last_success_at: datetime | None
    last_attempt_at: datetime | None
    next_run_at: datetime | None

    @property
    def problems(self) -> tuple[str, ...]:
        """Each problem's text, in order."""
        return tuple(issue.message for issue in self.issues)


def period(schedule: Schedule, now: datetime) -> timedelta | None:
    """The time between the schedule's next two cron times (its period, near now)."""
    if schedule.cron is None:
        return None
    first = next_fire(schedule.cron, schedule.time_zone, now)
    second = next_fire(schedule.cron, schedule.time_zone, first) if first else None
    return second - first if first and second else None


def severity(status: HealthStatus) -> int:
    """0 for OK, 1 for WARNING, 2 for CRITICAL (what /metrics' backups_health_status says)."""
    return list(HealthStatus).index(status)


def _schedule_problems(schedule: Schedule, op: Operation | None, now: datetime) -> list[HealthProblem]:
    """What is wrong with one enabled schedule, given its last operation."""
    if op is not None and op.status in (OperationStatus.FAILED, OperationStatus.INTERRUPTED):
        reason = f"{op.error.code}: {op.error.message}" if op.error else op.status.value
        message = f"schedule {schedule.name!r}: its last run {op.id} failed ({reason})"
        return [HealthProblem(HealthStatus.CRITICAL, message, HealthSubjectKind.SCHEDULE, schedule.id, op.id)]
    found: list[HealthProblem] = []
    if op is not None and op.status is OperationStatus.SUCCEEDED:
        for location, why in (op.params.get("copiesFailed") or {}).items():
            message = (
                f"schedule {schedule.name!r}: its last run {op.id} made its restore point, "
                f"but its copy to location {location!r} went wrong: {why}"
            )
            found.append(HealthProblem(HealthStatus.WARNING, message, HealthSubjectKind.LOCATION, location, op.id))
    every = period(schedule, now)
    since = schedule.last_success_at or schedule.created_at
    if every is not None and now - since > 2 * every:
        what = (
            f"its last success was at {since:%Y-%m-%d %H:%M} UTC"
            if schedule.last_success_at
            else "it has never succeeded"
        )
        message = f"schedule {schedule.name!r}: {what}, more than twice its period ago"
        found.append(HealthProblem(HealthStatus.WARNING, message, HealthSubjectKind.SCHEDULE, schedule.id))
    return found


def assess(
    schedules: list[Schedule],
    last_ops: dict[str, Operation | None],
    now: datetime,
    newest_point_at: datetime | None = None,
) -> BackupHealth:
    """The health these schedules and their last operations add up to at `now`; the last
    success is the newest of the schedules' and `newest_point_at` (the newest restore point
    of a counted origin, however it was made)."""
    # Every enabled schedule, after-change ones too: a failed run or copy is a problem however it
    # was started (only a cron schedule has a period to be overdue by).
    active = [s for s in schedules if s.enabled]
    issues = [issue for s in active for issue in _schedule_problems(s, last_ops.get(s.id), now)]
    status = max((issue.status for issue in issues), key=severity, default=HealthStatus.OK)
    # The times are the backups': a verification schedule's runs make no restore point.
    backups = [s for s in schedules if s.verification is None]
    successes = [s.last_success_at for s in backups if s.last_success_at]
    if newest_point_at is not None:
        successes.append(newest_point_at)
    return BackupHealth(
        status=status,
        issues=tuple(issues),
        last_success_at=max(successes, default=None),
        last_attempt_at=max((s.last_run_at for s in backups if s.last_run_at), default=None),
        next_run_at=min((s.next_run_at for s in active if s.next_run_at and s.verification is None), default=None),
    )


def copy_outcomes(runs: Iterable[Operation], wanted: set[str]) -> dict[str, bool]:
    """For each wanted location, whether the newest of these runs (newest first) that meant a
    copy for it got it there (uploaded and read back); a location no run meant one for is absent."""
    outcomes: dict[str, bool] = {}
    for run in runs:
        made = run.params.get("copiesMade") or {}
        failed = run.params.get("copiesFailed") or {}
        for location in wanted - outcomes.keys():
            if location in made:
                outcomes[location] = True
            elif location in failed:
                outcomes[location] = False
        if outcomes.keys() >= wanted:
            break
    return outcomes


class HealthService:
    """Reads backup health, and follows it for backupHealthChanged."""

    def __init__(
        self,
        *,
        schedules: ScheduleService,
        restore_points: RestorePointService,
        runner: OperationRunner,
        poll_seconds: float,
        verification: VerificationService | None = None,
        verification_warning_days: int = 0,
    ) -> None:
        self._verification = verification
        self._warning_days = verification_warning_days
        self._schedules = schedules
        self._restore_points = restore_points
        self._runner = runner
        self._poll = poll_seconds

    async def read(self) -> BackupHealth:
        """The health now."""
        schedules = await self._schedules.list_all()
        last_ops: dict[str, Operation | None] = {}
        for schedule in schedules:
            if schedule.last_operation_id is not None:
                last_ops[schedule.id] = await self._runner.history.get(schedule.last_operation_id)
        found = assess(schedules, last_ops, self._schedules.now(), await self._newest_point_at())
        damage = await self._damage()
        if not damage:
            return found
        status = max([found.status, *(issue.status for issue in damage)], key=severity)
        return dataclasses.replace(found, status=status, issues=found.issues + tuple(damage))

    async def _damage(self) -> list[HealthProblem]:
        """A restore point or local copy whose last verification found it DAMAGED or MISSING
        (and nothing repaired it): CRITICAL, naming it."""
        if self._verification is None:
            return []
        found: list[HealthProblem] = []
        if self._warning_days and (stale := await self._stale_verification()) is not None:
            found.append(stale)
        for item in await self._verification.unresolved():
            state, problems = item.verification.state.value, item.verification.problems
            detail = f": {problems[0]}" + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")
            if item.kind is VerifiedKind.RESTORE_POINT:
                message = f"restore point {item.subject_id} ({item.name!r}) is {state}{detail}"
                subject = HealthSubjectKind.RESTORE_POINT
            elif item.kind is VerifiedKind.LOCAL_COPY:
                message = f"local copy {item.name} is {state}{detail}; export its restore point again"
                subject = HealthSubjectKind.LOCAL_COPY
            else:
                message = f"remote copy {item.name} is {state}{detail}; upload a good copy again"
                subject = HealthSubjectKind.REMOTE_COPY
            found.append(HealthProblem(HealthStatus.CRITICAL, message, subject, item.subject_id))
        return found

    async def _stale_verification(self) -> HealthProblem | None:
        """A WARNING when no verification finished within the configured days while a restore
        point older than that exists (one that had the time to be verified)."""
        assert self._verification is not None
        since = self._schedules.now() - timedelta(days=self._warning_days)
        last = (await self._verification.totals()).last_finished_at
        if last is not None and last >= since:
            return None
        older = await self._restore_points.page(first=1, after=None, narrow=RestorePointFilter(created_before=since))
        if not older.items:
            return None
        when = f"the last one finished at {last:%Y-%m-%d %H:%M} UTC" if last else "none has run yet"
        message = f"no verification (verifyBackups) finished in the last {self._warning_days} day(s): {when}"
        return HealthProblem(HealthStatus.WARNING, message, HealthSubjectKind.VERIFICATION, "verifyBackups")

    async def _newest_point_at(self) -> datetime | None:
        newest = await self._restore_points.page(
            first=1, after=None, narrow=RestorePointFilter(origins=COUNTED_ORIGINS)
        )
        return newest.items[0].created_at if newest.items else None

    async def location_copies(self) -> dict[str, bool]:
        """For each location a schedule copies to: whether the newest copy a schedule run meant
        for it arrived (True also while no run has meant one yet)."""
        wanted = {name for s in await self._schedules.list_all() for name in s.copy_to_locations}
        outcomes: dict[str, bool] = {}
        after: str | None = None
        for _ in range(0, COPY_LOOKBACK_RUNS, _PAGE):
            if not wanted - outcomes.keys():
                break
            page = await self._runner.history.page(
                first=_PAGE,
                after=after,
                statuses=[OperationStatus.SUCCEEDED],
                kinds=[OperationKind.CREATE_RESTORE_POINT],
                include_dismissed=True,
            )
            outcomes |= copy_outcomes(page.items, wanted - outcomes.keys())
            if not page.has_next_page:
                break
            after = page.cursors[-1]
        return {name: outcomes.get(name, True) for name in sorted(wanted)}

    async def follow(self, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> AsyncIterator[BackupHealth]:
        """The health at once, then each time it differs (looked at after every operation
        change, and at least every poll interval, since time alone can make it stale)."""
        signal = self._runner.changes.changed
        last: BackupHealth | None = None
        while True:
            seen = signal.version
            current = await self.read()
            if current != last:
                last = current
                yield current
            await signal.wait(seen, timeout=self._poll)
            await sleep(SETTLE_SECONDS)
