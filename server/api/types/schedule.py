"""Schedules and their retention, as GraphQL types."""

from __future__ import annotations

import dataclasses
import enum
from datetime import datetime

import strawberry

from server.api.context import Info
from server.api.types.node import Node
from server.api.types.operation import Operation
from server.api.types.restore_point import RestorePoint
from server.model import records as models
from server.model.pruning.retention import RetentionDecision as RetentionDecision_


@strawberry.type(
    description="How many of a schedule's restore points to keep; null: no limit by that rule. "
    "Pinned ones are kept and do not count; the schedule's newest is always kept."
)
class RetentionPolicy:
    keep_last: int | None = None
    keep_hourly: int | None = None
    keep_daily: int | None = None
    keep_weekly: int | None = None
    keep_monthly: int | None = None
    keep_yearly: int | None = None
    keep_within_days: int | None = None

    @classmethod
    def from_domain(cls, policy: models.RetentionPolicy) -> RetentionPolicy:
        return cls(**dataclasses.asdict(policy))


@strawberry.input(description="A retention policy: each count at least 1, or null (left out) for no limit.")
class RetentionPolicyInput:
    keep_last: int | None = None
    keep_hourly: int | None = None
    keep_daily: int | None = None
    keep_weekly: int | None = None
    keep_monthly: int | None = None
    keep_yearly: int | None = None
    keep_within_days: int | None = None

    def to_domain(self) -> models.RetentionPolicy:
        return models.RetentionPolicy(
            **{f.name: getattr(self, f.name) for f in dataclasses.fields(models.RetentionPolicy)}
        )


@strawberry.enum(description="What a schedule's runs do.")
class ScheduleKind(enum.Enum):
    BACKUP = "BACKUP"  # each run makes a restore point (CREATE_RESTORE_POINT)
    VERIFY = "VERIFY"  # each run verifies the restore points (VERIFY_BACKUPS)


@strawberry.type(description="What a verification schedule's runs read (each a VERIFY_BACKUPS operation).")
class ScheduledVerification:
    read_percent: int = strawberry.field(description="The share of the blobs each run reads (a rotation over runs).")
    outdated_after_days: int = strawberry.field(
        description="Restore points verified OK within this many days are skipped; 0: none is skipped."
    )
    copies: bool = strawberry.field(description="Every local and remote copy is read whole too.")

    @classmethod
    def from_domain(cls, wanted: models.ScheduledVerification) -> ScheduledVerification:
        return cls(
            read_percent=wanted.read_percent, outdated_after_days=wanted.outdated_after_days, copies=wanted.copies
        )


@strawberry.input(
    description="Makes a schedule a verification schedule: its runs verify every restore point (verifyBackups) "
    "instead of making one. A field left out takes its default."
)
class ScheduledVerificationInput:
    read_percent: int = strawberry.field(
        default=100, description="1 to 100: the share of the blobs each run reads, chosen so that runs cover all."
    )
    outdated_after_days: int = strawberry.field(
        default=0,
        description="0 or more: restore points verified OK within this many days are skipped (0: none is).",
    )
    copies: bool = strawberry.field(default=True, description="Read every local and remote copy whole too.")

    def to_domain(self) -> models.ScheduledVerification:
        return models.ScheduledVerification(
            read_percent=self.read_percent, outdated_after_days=self.outdated_after_days, copies=self.copies
        )


@strawberry.input(
    description="A schedule. createSchedule needs `name`; in updateSchedule a field left out keeps its value. "
    "null is a value of its own only where a Schedule can show null: `cron: null` (after changes only), "
    "`afterChangeQuietSeconds: null` (on its cron only), `labelTemplate: null` (the default label); for "
    "the other fields null is as if left out. Every problem with the input is reported at once, one "
    "userError per problem, each with its field."
)
class ScheduleInput:
    # Nullable so that updateSchedule can leave it out (a client sending a name works as before);
    # createSchedule refuses a missing one with INVALID_INPUT on `name`.
    name: str | None = strawberry.field(default=strawberry.UNSET, description="Needed by createSchedule.")
    cron: str | None = strawberry.field(
        default=strawberry.UNSET,
        description="5 fields: minute hour day-of-month month day-of-week. Null only with afterChangeQuietSeconds.",
    )
    time_zone: str | None = strawberry.field(
        default=strawberry.UNSET, description="IANA name such as 'Europe/Berlin'; default UTC."
    )
    enabled: bool | None = strawberry.UNSET
    after_change_quiet_seconds: int | None = strawberry.field(
        default=strawberry.UNSET,
        description="Also make a restore point after the configuration changed: once it has been quiet this "
        "many seconds (1 to 604800) after a change, and only if it differs from the newest restore point "
        "(a burst of changes makes one, a change undone none). With it, cron may be null (after changes only).",
    )
    retention: RetentionPolicyInput | None = strawberry.field(
        default=strawberry.UNSET, description="Replaces the whole policy (a rule left out in it: no limit)."
    )
    copy_to_locations: list[str] | None = strawberry.field(
        default=strawberry.UNSET,
        description="Locations (declared in the config file; not 'local', each once) each run's restore point is "
        "exported and uploaded to, in the same operation; a failed upload keeps the restore point, is named in the "
        "run's log and makes backupHealth WARNING. The location's keepLast prunes this schedule's copies there. "
        "Empty: no copies; null or left out: none (create) or unchanged (update).",
    )
    jitter_seconds: int | None = strawberry.field(
        default=strawberry.UNSET,
        description="Each run starts up to this many seconds after its cron time, at random (default 0).",
    )
    label_template: str | None = strawberry.field(
        default=strawberry.UNSET,
        description="Label of the restore points it makes; placeholders {schedule}, {date}, {time}, {datetime} "
        '(in the schedule\'s time zone). Default (and null) "{schedule} {date} {time}".',
    )
    verification: ScheduledVerificationInput | None = strawberry.field(
        default=strawberry.UNSET,
        description="Given: a verification schedule, whose runs verify the restore points (a VERIFY_BACKUPS "
        "operation each) on its cron; it has no retention, copyToLocations, afterChangeQuietSeconds or "
        "labelTemplate. null: a backup schedule (the default); left out in updateSchedule: unchanged.",
    )


@strawberry.type(
    description="When to make restore points on their own, and which of them to keep; or, a verification "
    "schedule (kind VERIFY), when to verify them."
)
class Schedule(Node):
    name: str
    enabled: bool
    cron: str | None
    time_zone: str
    after_change_quiet_seconds: int | None = strawberry.field(
        description="Also runs once the configuration has been quiet this many seconds after a change, if it "
        "differs from the newest restore point; null: on its cron only."
    )
    retention: RetentionPolicy
    copy_to_locations: list[str] = strawberry.field(
        description="Locations each run's restore point is uploaded to (see ScheduleInput.copyToLocations)."
    )
    jitter_seconds: int
    label_template: str | None
    created_at: datetime
    updated_at: datetime
    next_run_at: datetime | None = strawberry.field(description="Null while paused.")
    last_run_at: datetime | None
    last_success_at: datetime | None
    last_operation_id: strawberry.Private[str | None]
    verification: ScheduledVerification | None = strawberry.field(
        default=None, description="Set on a verification schedule: what its runs read; null: a backup schedule."
    )

    @strawberry.field(description="BACKUP: its runs make restore points; VERIFY: they verify them.")
    def kind(self) -> ScheduleKind:
        return ScheduleKind.BACKUP if self.verification is None else ScheduleKind.VERIFY

    @strawberry.field(
        description="Its latest run (a CREATE_RESTORE_POINT operation; VERIFY_BACKUPS for a verification schedule)."
    )
    async def last_operation(self, info: Info) -> Operation | None:
        if self.last_operation_id is None:
            return None
        op = await info.context.services.operations.get(self.last_operation_id)
        return Operation.from_domain(op) if op else None

    @classmethod
    def from_domain(cls, schedule: models.Schedule) -> Schedule:
        return cls(
            id=strawberry.ID(schedule.id),
            name=schedule.name,
            enabled=schedule.enabled,
            cron=schedule.cron,
            time_zone=schedule.time_zone,
            after_change_quiet_seconds=schedule.after_change_quiet_seconds,
            retention=RetentionPolicy.from_domain(schedule.retention),
            copy_to_locations=list(schedule.copy_to_locations),
            jitter_seconds=schedule.jitter_seconds,
            label_template=schedule.label_template,
            created_at=schedule.created_at,
            updated_at=schedule.updated_at,
            next_run_at=schedule.next_run_at if schedule.enabled else None,
            last_run_at=schedule.last_run_at,
            last_success_at=schedule.last_success_at,
            last_operation_id=schedule.last_operation_id,
            verification=ScheduledVerification.from_domain(schedule.verification) if schedule.verification else None,
        )


@strawberry.type(description="What retention does with one restore point of the schedule, and every reason.")
class RetentionDecision:
    restore_point: RestorePoint
    keep: bool
    reasons: list[str]

    @classmethod
    def from_domain(cls, decision: RetentionDecision_) -> RetentionDecision:
        return cls(
            restore_point=RestorePoint.from_domain(decision.point), keep=decision.keep, reasons=list(decision.reasons)
        )
