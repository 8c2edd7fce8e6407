"""Backup health for monitoring, from the schedules and their last runs: a schedule whose
last run failed is CRITICAL; one whose last success (or, never having succeeded, its
creation) is older than twice its period is a WARNING, and so is one whose last run could
not copy its restore point to a location (copyToLocations). Paused schedules are not judged."""

from __future__ import annotations

import asyncio
import enum
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from server.model.cron_times import next_fire
from server.model.records import Operation, OperationStatus, Schedule
from server.operations.runner import OperationRunner
from server.services.schedules.service import ScheduleService

# How long a change of any operation is let settle before health is read again: progress
# steps fire many changes a second, health needs one look.
SETTLE_SECONDS = 0.2


class HealthStatus(enum.StrEnum):
    OK = "OK"
    WARNING = "WARNING"
    CRITICAL = "CRITICAL"


@dataclass(frozen=True, slots=True)
class BackupHealth:
    status: HealthStatus
    problems: tuple[str, ...]
    last_success_at: datetime | None
    last_attempt_at: datetime | None
    next_run_at: datetime | None


def period(schedule: Schedule, now: datetime) -> timedelta | None:
    """The time between the schedule's next two cron times (its period, near now)."""
    if schedule.cron is None:
        return None
    first = next_fire(schedule.cron, schedule.time_zone, now)
    second = next_fire(schedule.cron, schedule.time_zone, first) if first else None
    return second - first if first and second else None


def assess(schedules: list[Schedule], last_ops: dict[str, Operation | None], now: datetime) -> BackupHealth:
    """The health these schedules and their last operations add up to at `now`."""
    problems: list[tuple[HealthStatus, str]] = []
    active = [s for s in schedules if s.enabled and s.cron is not None]
    for schedule in active:
        op = last_ops.get(schedule.id)
        if op is not None and op.status in (OperationStatus.FAILED, OperationStatus.INTERRUPTED):
            reason = f"{op.error.code}: {op.error.message}" if op.error else op.status.value
            problems.append(
                (HealthStatus.CRITICAL, f"schedule {schedule.name!r}: its last run {op.id} failed ({reason})")
            )
            continue
        if op is not None and op.status is OperationStatus.SUCCEEDED:
            for location, why in (op.params.get("copiesFailed") or {}).items():
                problems.append(
                    (
                        HealthStatus.WARNING,
                        f"schedule {schedule.name!r}: its last run {op.id} made its restore point, "
                        f"but its copy to location {location!r} went wrong: {why}",
                    )
                )
        every = period(schedule, now)
        since = schedule.last_success_at or schedule.created_at
        if every is not None and now - since > 2 * every:
            what = (
                f"its last success was at {since:%Y-%m-%d %H:%M} UTC"
                if schedule.last_success_at
                else ("it has never succeeded")
            )
            problems.append(
                (HealthStatus.WARNING, f"schedule {schedule.name!r}: {what}, more than twice its period ago")
            )
    status = HealthStatus.OK
    if problems:
        status = (
            HealthStatus.CRITICAL
            if any(level is HealthStatus.CRITICAL for level, _ in problems)
            else (HealthStatus.WARNING)
        )
    return BackupHealth(
        status=status,
        problems=tuple(text for _, text in problems),
        last_success_at=max((s.last_success_at for s in schedules if s.last_success_at), default=None),
        last_attempt_at=max((s.last_run_at for s in schedules if s.last_run_at), default=None),
        next_run_at=min((s.next_run_at for s in active if s.next_run_at), default=None),
    )


class HealthService:
    """Reads backup health, and follows it for backupHealthChanged."""

    def __init__(self, *, schedules: ScheduleService, runner: OperationRunner, poll_seconds: float) -> None:
        self._schedules = schedules
        self._runner = runner
        self._poll = poll_seconds

    async def read(self) -> BackupHealth:
        """The health now."""
        schedules = await self._schedules.list_all()
        last_ops: dict[str, Operation | None] = {}
        for schedule in schedules:
            if schedule.last_operation_id is not None:
                last_ops[schedule.id] = await self._runner.history.get(schedule.last_operation_id)
        return assess(schedules, last_ops, self._schedules.now())

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
