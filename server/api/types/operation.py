from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeAlias

import strawberry

from server.api.context import Info
from server.api.errors import ClientError
from server.api.types.diff import DiffSummary
from server.api.types.local_copy import LocalCopy
from server.api.types.node import Node
from server.api.types.restore_point import RestorePoint
from server.model import records as models
from server.model.diffs import config_diff
from server.model.errors import OperationErrorCode, UserErrorCode

# strawberry.enum registers the domain's enum itself: the names below are the domain's enums,
# so a type checker and the resolvers see one class, the schema its enum.
for _enum in (models.OperationKind, models.OperationStatus, models.LogLevel):
    strawberry.enum(_enum)
OperationKind = models.OperationKind
OperationStatus = models.OperationStatus
LogLevel = models.LogLevel

MAX_LOG_PAGE = 1000


@strawberry.type(
    description="One line of an operation's log. Sequence numbers start at 1 and increase by one, "
    "except after a crash: a number once shown never names another line, so the lines a crash kept "
    "from being stored leave a gap."
)
class LogEntry:
    sequence: int
    at: datetime
    level: LogLevel
    message: str

    @classmethod
    def from_domain(cls, entry: models.LogEntry) -> LogEntry:
        return cls(sequence=entry.sequence, at=entry.at, level=entry.level, message=entry.message)


# The domain's OperationErrorCode plus OTHER, made from it so the two cannot drift apart.
# OTHER: a code this server version does not list (written by a newer one); `code` has it.
# TEST_FAILURE stays (the contract keeps every value), deprecated: only a test seam sends it.
DEPRECATED_CODES = {
    OperationErrorCode.TEST_FAILURE: "Sent only under a test seam (BACKUPS_TEST_FAIL_AT, server/test_seams.py), "
    "never by a server in use."
}
if TYPE_CHECKING:  # built at run time from the domain's codes; to a type checker, an Enum
    ErrorCodeField: TypeAlias = enum.Enum
else:
    ErrorCodeField = strawberry.enum(
        enum.Enum(
            "ErrorCodeField",
            {
                **{
                    code.name: strawberry.enum_value(code.value, deprecation_reason=DEPRECATED_CODES.get(code))
                    for code in OperationErrorCode
                },
                "OTHER": "OTHER",
            },
        ),
        name="OperationErrorCode",
        description="Why an operation failed or was interrupted: `OperationError.code` as an enum.",
    )
OTHER_CODE = ErrorCodeField("OTHER")


@strawberry.type(description="Why an operation failed: a stable code and a message for people.")
class OperationError:
    code: str = strawberry.field(description="The code as a string; `errorCode` is the same code, typed.")
    message: str

    @strawberry.field(
        description="`code` as an enum, for clients that generate types; OTHER for a code "
        "this server version does not list."
    )
    def error_code(self) -> ErrorCodeField:
        try:
            return ErrorCodeField(self.code)
        except ValueError:
            return OTHER_CODE


@strawberry.type(description="A copy a scheduled run put at a location.")
class CopyMade:
    location: str
    file_name: str = strawberry.field(description="Its name there (a RemoteCopy's fileName).")


@strawberry.type(description="A location a scheduled run could not copy its restore point to, and why.")
class CopyFailed:
    location: str
    problem: str


@strawberry.type(description="A background action: creating, exporting, importing or applying.")
class Operation(Node):
    kind: OperationKind
    status: OperationStatus
    done: bool = strawberry.field(description="Whether the status is final.")
    progress: float = strawberry.field(description="From 0 to 1; never goes backwards.")
    stage: str | None = strawberry.field(description="What the operation is doing now, for people.")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    requested_by: str | None
    dismissed: bool
    error: OperationError | None
    last_sequence: int = strawberry.field(description="Sequence number of the newest log line.")
    restore_point_id: strawberry.Private[str | None]
    local_copy_id: strawberry.Private[str | None]
    params: strawberry.Private[dict[str, Any]]

    @strawberry.field(description="The restore point this operation works on or made.")
    async def restore_point(self, info: Info) -> RestorePoint | None:
        if self.restore_point_id is None:
            return None
        point = await info.context.loaders.restore_points.load(self.restore_point_id)
        return RestorePoint.from_domain(point) if point else None

    @strawberry.field(
        description="For an apply: the safety restore point it made of the state before; null when it made none (yet)."
    )
    async def safety_restore_point(self, info: Info) -> RestorePoint | None:
        point_id = self.params.get("safetyRestorePointId")
        if not point_id:
            return None
        point = await info.context.loaders.restore_points.load(point_id)
        return RestorePoint.from_domain(point) if point else None

    @strawberry.field(
        description="For a finished apply: what it changed (from the state before to the restore "
        "point's, in the sources it applied); its log lists the changed paths. Null otherwise."
    )
    def changes(self) -> DiffSummary | None:
        found = self.params.get("changes")
        return DiffSummary.from_domain(config_diff.DiffSummary.from_params(found)) if found else None

    @strawberry.field(
        description="For a scheduled run with copyToLocations: the copies it made, by location (once its "
        "copy step has ended). Null for any other operation, or before then."
    )
    def copies_made(self) -> list[CopyMade] | None:
        made = self.params.get("copiesMade")
        if made is None:
            return None
        return [CopyMade(location=location, file_name=name) for location, name in made.items()]

    @strawberry.field(
        description="For a scheduled run with copyToLocations: the locations it could not copy to, and why "
        "(once its copy step has ended; empty when every copy was made). Null for any other operation, or before then."
    )
    def copies_failed(self) -> list[CopyFailed] | None:
        failed = self.params.get("copiesFailed")
        if failed is None:
            return None
        return [CopyFailed(location=location, problem=why) for location, why in failed.items()]

    @strawberry.field(description="The local copy this operation works on or made.")
    async def local_copy(self, info: Info) -> LocalCopy | None:
        if self.local_copy_id is None:
            return None
        copy = await info.context.loaders.local_copies.load(self.local_copy_id)
        return LocalCopy.from_domain(copy) if copy else None

    @strawberry.field(description="Log lines after `afterSequence`, oldest first, at most `first` of them.")
    async def log(self, info: Info, after_sequence: int | None = 0, first: int | None = None) -> list[LogEntry]:
        if first is not None and not 0 <= first <= MAX_LOG_PAGE:
            raise ClientError(f"first must be between 0 and {MAX_LOG_PAGE}", UserErrorCode.INVALID_INPUT)
        limit = MAX_LOG_PAGE if first is None else first
        lines = await info.context.services.operations.read_log(
            str(self.id), after=max(after_sequence or 0, 0), limit=limit
        )
        return [LogEntry.from_domain(line) for line in lines]

    @classmethod
    def from_domain(cls, op: models.Operation) -> Operation:
        return cls(
            id=strawberry.ID(op.id),
            kind=op.kind,
            status=op.status,
            done=op.done,
            progress=op.progress,
            stage=op.stage,
            created_at=op.created_at,
            started_at=op.started_at,
            finished_at=op.finished_at,
            requested_by=op.requested_by,
            dismissed=op.dismissed,
            error=OperationError(code=op.error.code, message=op.error.message) if op.error else None,
            last_sequence=op.last_sequence,
            restore_point_id=op.restore_point_id,
            local_copy_id=op.local_copy_id,
            params=op.params,
        )
