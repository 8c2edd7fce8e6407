"""Schedules: stored in the database, checked here, run by server/services/schedules/scheduler.py."""

from __future__ import annotations

import dataclasses
import enum
import random
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from server.clock import Clock, utc_now
from server.model import cron_times
from server.model.errors import InputProblems, InvalidInput, NotFound, quoted
from server.model.ids import is_well_formed, new_id
from server.model.names import SCHEDULE_NAME_RULE, is_schedule_name
from server.model.pruning.retention import RetentionDecision, decide
from server.model.records import RetentionPolicy, Schedule, ScheduledVerification
from server.services.schedules.copies import check_copy_targets
from server.storage.db import schedules_repo as repo
from server.storage.db.database import ConstraintViolation, Database

MAX_JITTER = 6 * 3600
# After-change restore points: quiet at least a second, at most a week (longer is no "after").
MAX_QUIET_SECONDS = 7 * 24 * 3600
MAX_KEEP = 100_000
MAX_LABEL_TEMPLATE = 150
MAX_OUTDATED_AFTER_DAYS = 36_500  # a hundred years: past that, "never again" is what is meant
DEFAULT_LABEL_TEMPLATE = "{schedule} {date} {time}"
PLACEHOLDERS = ("schedule", "date", "time", "datetime")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
KEEP_FIELDS = {
    "keep_last": "keepLast",
    "keep_hourly": "keepHourly",
    "keep_daily": "keepDaily",
    "keep_weekly": "keepWeekly",
    "keep_monthly": "keepMonthly",
    "keep_yearly": "keepYearly",
    "keep_within_days": "keepWithinDays",
}


class Keep(enum.Enum):
    """The type of KEEP."""

    KEEP = "keep"


# A field the client left out: an update keeps its value, a create takes the default.
KEEP = Keep.KEEP


@dataclass(frozen=True, slots=True)
class ScheduleSpec:
    """What a client asks for. KEEP (left out): unchanged in an update, the default in a create.
    None is a value of its own only where a schedule can be null: `cron` (after changes only),
    `after_change_quiet_seconds` (on its cron only), `label_template` (the default label) and
    `verification` (a backup schedule)."""

    name: str | Keep = KEEP
    cron: str | None | Keep = KEEP
    time_zone: str | Keep = KEEP
    enabled: bool | Keep = KEEP
    jitter_seconds: int | Keep = KEEP
    label_template: str | None | Keep = KEEP
    retention: RetentionPolicy | Keep = KEEP
    after_change_quiet_seconds: int | None | Keep = KEEP
    copy_to_locations: tuple[str, ...] | Keep = KEEP
    verification: ScheduledVerification | None | Keep = KEEP  # None: a backup schedule

    def given(self) -> dict[str, Any]:
        """The fields the client gave, by their Schedule name."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if getattr(self, f.name) is not KEEP}


# Told after each committed change of a schedule: its id, before (None: created) and after (None: deleted).
SavedListener = Callable[[str, Schedule | None, Schedule | None], None]


def check_retention(policy: RetentionPolicy) -> RetentionPolicy:
    """INVALID_INPUT for a keep count of 0 or less (null, not 0, means "no limit"), one per rule."""
    problems = InputProblems()
    for name, graphql_name in KEEP_FIELDS.items():
        value = getattr(policy, name)
        if value is not None and not 1 <= value <= MAX_KEEP:
            with problems.check():
                raise InvalidInput(
                    f"retention.{graphql_name} must be between 1 and {MAX_KEEP}, or null for no limit (got {value})",
                    field=f"retention.{graphql_name}",
                )
    problems.raise_any()
    return policy


def check_label_template(template: str) -> str:
    """The template if it uses only known placeholders and printable text."""
    if any(ch < " " for ch in template) or len(template) > MAX_LABEL_TEMPLATE:
        raise InvalidInput(
            f"the label template must be printable and at most {MAX_LABEL_TEMPLATE} characters", field="labelTemplate"
        )
    unknown = [name for name in _PLACEHOLDER.findall(template) if name not in PLACEHOLDERS]
    if unknown:
        raise InvalidInput(
            f"unknown placeholder {{{unknown[0]}}} in the label template; known: "
            + ", ".join(f"{{{name}}}" for name in PLACEHOLDERS),
            field="labelTemplate",
        )
    return template


def render_label(schedule: Schedule, at: datetime) -> str:
    """The label of a restore point this schedule makes at `at` (in its time zone)."""
    local = at.astimezone(cron_times.zone(schedule.time_zone))
    values = {
        "schedule": schedule.name,
        "date": f"{local:%Y-%m-%d}",
        "time": f"{local:%H:%M}",
        "datetime": local.isoformat(timespec="minutes"),
    }
    template = schedule.label_template or DEFAULT_LABEL_TEMPLATE
    label = _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)
    return label.strip()[:200] or schedule.name


def verification_problems(schedule: Schedule) -> list[InvalidInput]:
    """What is wrong with a verification schedule: its own values out of range, and what only a
    backup schedule has (its runs make no restore points to keep, copy or make after changes)."""
    wanted = schedule.verification
    if wanted is None:
        return []
    found: list[InvalidInput] = []
    if not 1 <= wanted.read_percent <= 100:
        found.append(
            InvalidInput(
                f"verification.readPercent must be from 1 to 100, not {wanted.read_percent}",
                field="verification.readPercent",
            )
        )
    if not 0 <= wanted.outdated_after_days <= MAX_OUTDATED_AFTER_DAYS:
        found.append(
            InvalidInput(
                f"verification.outdatedAfterDays must be from 0 (verify every restore point each run) to "
                f"{MAX_OUTDATED_AFTER_DAYS}, not {wanted.outdated_after_days}",
                field="verification.outdatedAfterDays",
            )
        )
    backup_only = "a verification schedule makes no restore points"
    if schedule.retention.limited:
        found.append(
            InvalidInput(f"{backup_only}, so it has no retention: give none (retention: {{}})", field="retention")
        )
    if schedule.copy_to_locations:
        found.append(
            InvalidInput(f"{backup_only}, so it copies none: copyToLocations must be empty", field="copyToLocations")
        )
    if schedule.after_change_quiet_seconds is not None:
        found.append(
            InvalidInput(
                f"{backup_only}: it runs on its cron only, afterChangeQuietSeconds must be null",
                field="afterChangeQuietSeconds",
            )
        )
    if schedule.label_template is not None:
        found.append(
            InvalidInput(f"{backup_only}, so it labels none: labelTemplate must be null", field="labelTemplate")
        )
    return found


def next_run(schedule: Schedule, after: datetime) -> datetime | None:
    """When this schedule next fires after `after`, its jitter added; None if never."""
    if schedule.cron is None or not schedule.enabled:
        return None
    slot = cron_times.next_fire(schedule.cron, schedule.time_zone, after)
    if slot is None or not schedule.jitter_seconds:
        return slot
    return slot + timedelta(seconds=random.uniform(0, schedule.jitter_seconds))


class ScheduleService:
    """Create, change, read and delete schedules; the preview of their retention."""

    def __init__(self, *, db: Database, clock: Clock, locations: Collection[str] = ()) -> None:
        self._db = db
        self._clock = clock
        self._locations = tuple(locations)  # configured location names, for copyToLocations
        self._listeners: list[SavedListener] = []

    def on_saved(self, listener: SavedListener) -> None:
        """Call `listener(id, before, after)` after each create, update and delete that committed."""
        self._listeners.append(listener)

    def _saved(self, schedule_id: str, before: Schedule | None, after: Schedule | None) -> None:
        for listener in self._listeners:
            listener(schedule_id, before, after)

    def now(self) -> datetime:
        """The server's present, from its (injectable) clock."""
        return utc_now(self._clock)

    async def list_all(self) -> list[Schedule]:
        async with self._db.read() as session:
            return await repo.list_schedules(session)

    async def get(self, schedule_id: str) -> Schedule | None:
        if not is_well_formed(schedule_id, "sch"):
            return None
        async with self._db.read() as session:
            return await repo.get_schedule(session, schedule_id)

    async def require(self, schedule_id: str, field: str = "id") -> Schedule:
        schedule = await self.get(schedule_id)
        if schedule is None:
            raise NotFound(f"no schedule with id {quoted(schedule_id)}", field=field)
        return schedule

    async def create(self, spec: ScheduleSpec) -> Schedule:
        """A new schedule; its first run is its next cron time, never at once. Every problem
        with `spec` is reported at once."""
        now = self.now()
        defaults = Schedule(
            id=new_id("sch"),
            name="",
            enabled=True,
            cron=None,
            time_zone="UTC",
            jitter_seconds=0,
            label_template=None,
            retention=RetentionPolicy(),
            created_at=now,
            updated_at=now,
            next_run_at=None,
            last_run_at=None,
            last_success_at=None,
            last_operation_id=None,
            after_change_quiet_seconds=None,
            copy_to_locations=(),
        )
        schedule = await self._checked(dataclasses.replace(defaults, **spec.given()), spec)
        schedule = dataclasses.replace(schedule, next_run_at=next_run(schedule, now))
        try:
            async with self._db.write() as session:
                if await repo.find_by_name(session, schedule.name) is not None:
                    raise self._duplicate(schedule.name)
                await repo.add_schedule(session, schedule)
        except ConstraintViolation:  # the unique name, when two requests race
            raise self._duplicate(schedule.name) from None
        self._saved(schedule.id, None, schedule)
        return schedule

    async def update(self, schedule_id: str, spec: ScheduleSpec) -> Schedule:
        """Change what `spec` gives (every problem reported at once); a changed cron, zone or a
        resume takes the next time from now."""
        current = await self.require(schedule_id)
        now = self.now()
        schedule = await self._checked(dataclasses.replace(current, **spec.given(), updated_at=now), spec)
        timing = (schedule.cron, schedule.time_zone, schedule.enabled, schedule.jitter_seconds)
        if timing != (current.cron, current.time_zone, current.enabled, current.jitter_seconds):
            schedule = dataclasses.replace(schedule, next_run_at=next_run(schedule, now))
        try:
            async with self._db.write() as session:
                other = await repo.find_by_name(session, schedule.name)
                if other is not None and other.id != schedule.id:
                    raise self._duplicate(schedule.name)
                if not await repo.save_schedule(session, schedule):
                    raise NotFound(f"no schedule with id {quoted(schedule_id)}", field="id")
        except ConstraintViolation:  # the unique name, when two requests race
            raise self._duplicate(schedule.name) from None
        self._saved(schedule.id, current, schedule)
        return schedule

    async def delete(self, schedule_id: str) -> str:
        """Delete it; its restore points stay (unlinked), a run under way finishes."""
        if not is_well_formed(schedule_id, "sch"):
            raise NotFound(f"no schedule with id {quoted(schedule_id)}", field="id")
        async with self._db.write() as session:
            if not await repo.delete_schedule(session, schedule_id):
                raise NotFound(f"no schedule with id {quoted(schedule_id)}", field="id")
        self._saved(schedule_id, None, None)
        return schedule_id

    async def save_state(self, schedule: Schedule) -> bool:
        """Store the scheduler's fields (next and last runs); False once it is deleted."""
        async with self._db.write() as session:
            current = await repo.get_schedule(session, schedule.id)
            if current is None:
                return False
            # Only the run fields: a client's update meanwhile keeps its own changes.
            merged = dataclasses.replace(
                current,
                next_run_at=schedule.next_run_at,
                last_run_at=schedule.last_run_at,
                last_success_at=schedule.last_success_at,
                last_operation_id=schedule.last_operation_id,
            )
            return await repo.save_schedule(session, merged)

    async def mark_pruned(self, schedule_id: str, at: datetime) -> None:
        """Store when the schedule's retention last ran (the timer's state, read again after a
        restart: a server restarted more often than the timer's period still prunes)."""
        async with self._db.write() as session:
            current = await repo.get_schedule(session, schedule_id)
            if current is not None:
                await repo.save_schedule(session, dataclasses.replace(current, last_pruned_at=at))

    async def unlink_restore_points(self, schedule_id: str) -> None:
        """After a run of a deleted schedule: its restore point loses the link too."""
        async with self._db.write() as session:
            await repo.unlink_restore_points(session, schedule_id)

    async def retention_preview(self, schedule_id: str, field: str = "scheduleId") -> list[RetentionDecision]:
        """For each restore point of the schedule: keep or delete, and every reason."""
        schedule = await self.require(schedule_id, field=field)
        async with self._db.read() as session:
            points = await repo.schedule_restore_points(session, schedule.id)
        return decide(points, schedule.retention, schedule.time_zone, self.now())

    async def _checked(self, schedule: Schedule, spec: ScheduleSpec) -> Schedule:
        """The schedule with its cron normalised, if every field is acceptable; else INVALID_INPUT
        with every problem at once, each naming its field (a form shows them all together)."""
        problems = InputProblems()
        with problems.check():
            if not schedule.name:
                raise InvalidInput(f"a schedule needs a name: {SCHEDULE_NAME_RULE}", field="name")
            if not is_schedule_name(schedule.name):
                raise InvalidInput(f"bad schedule name {quoted(schedule.name)}: {SCHEDULE_NAME_RULE}", field="name")
            await self._check_name_free(schedule)
        quiet = schedule.after_change_quiet_seconds
        with problems.check():
            if quiet is not None and not 1 <= quiet <= MAX_QUIET_SECONDS:
                raise InvalidInput(
                    f"afterChangeQuietSeconds must be between 1 and {MAX_QUIET_SECONDS} (a week), or null for no "
                    f"restore points after changes (got {quiet})",
                    field="afterChangeQuietSeconds",
                )
        with problems.check():
            if not isinstance(spec.copy_to_locations, Keep):
                check_copy_targets(spec.copy_to_locations, self._locations)
        cron = None
        with problems.check():
            if schedule.cron is None and quiet is None:
                raise InvalidInput("a cron expression is needed (or afterChangeQuietSeconds, or both)", field="cron")
            cron = cron_times.check_cron(schedule.cron) if schedule.cron is not None else None
        zone_known = False
        with problems.check():
            # Strict for a zone the client gives now; one stored earlier (when "localtime" still
            # passed) keeps working until it is changed.
            if not isinstance(spec.time_zone, Keep):
                cron_times.check_zone(schedule.time_zone)
            cron_times.zone(schedule.time_zone)
            zone_known = True
        with problems.check():
            if not 0 <= schedule.jitter_seconds <= MAX_JITTER:
                raise InvalidInput(f"jitterSeconds must be between 0 and {MAX_JITTER}", field="jitterSeconds")
        with problems.check():
            if schedule.label_template is not None:
                check_label_template(schedule.label_template)
        with problems.check():
            check_retention(schedule.retention)
        problems.found.extend(verification_problems(schedule))
        with problems.check():
            if cron is not None and zone_known and cron_times.next_fire(cron, schedule.time_zone, self.now()) is None:
                raise InvalidInput(f"cron expression {quoted(cron)} never fires", field="cron")
        problems.raise_any()
        return dataclasses.replace(schedule, cron=cron, label_template=schedule.label_template or None)

    async def _check_name_free(self, schedule: Schedule) -> None:
        """INVALID_INPUT if another schedule has this name (checked again when it is stored)."""
        async with self._db.read() as session:
            other = await repo.find_by_name(session, schedule.name)
        if other is not None and other.id != schedule.id:
            raise self._duplicate(schedule.name)

    @staticmethod
    def _duplicate(name: str) -> InvalidInput:
        return InvalidInput(f"a schedule named {quoted(name)} exists already", field="name")
