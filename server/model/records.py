"""The domain's records: plain frozen dataclasses and string enums, no library types."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Generic, TypeVar

from server.model.errors import OperationErrorCode

T = TypeVar("T")


class OperationKind(enum.StrEnum):
    CREATE_RESTORE_POINT = "CREATE_RESTORE_POINT"
    EXPORT_RESTORE_POINT = "EXPORT_RESTORE_POINT"
    IMPORT_LOCAL_COPY = "IMPORT_LOCAL_COPY"
    APPLY_RESTORE_POINT = "APPLY_RESTORE_POINT"
    UPLOAD_TO_LOCATION = "UPLOAD_TO_LOCATION"
    FETCH_FROM_LOCATION = "FETCH_FROM_LOCATION"
    PRUNE_RESTORE_POINTS = "PRUNE_RESTORE_POINTS"
    VERIFY_BACKUPS = "VERIFY_BACKUPS"


class OperationStatus(enum.StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    INTERRUPTED = "INTERRUPTED"

    @property
    def done(self) -> bool:
        return self not in (OperationStatus.QUEUED, OperationStatus.RUNNING)


class LogLevel(enum.StrEnum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


class RestorePointOrigin(enum.StrEnum):
    MANUAL = "MANUAL"
    SAFETY = "SAFETY"
    IMPORTED = "IMPORTED"
    SCHEDULED = "SCHEDULED"


class EntryKind(enum.StrEnum):
    FILE = "FILE"
    DIRECTORY = "DIRECTORY"
    SYMLINK = "SYMLINK"  # content is the link target, stored like a file's


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    """One item of a restore point: where it came from and the blob holding its content."""

    source: str
    path: str  # POSIX, relative to the source's root, never absolute, never with '..'
    kind: EntryKind
    size: int
    sha256: str | None  # None for directories
    mode: int = 0o644
    mtime: datetime | None = None


@dataclass(frozen=True, slots=True)
class RestorePoint:
    id: str
    label: str
    note: str | None
    origin: RestorePointOrigin
    created_at: datetime
    created_by: str | None
    size_bytes: int
    stored_bytes: int
    item_count: int
    checksum: str  # SHA-256 of the canonical manifest
    server_version: str
    pinned: bool = False  # kept by every retention rule, refused by delete until unpinned
    schedule_id: str | None = None  # the schedule that made it, while that schedule exists
    expires_at: datetime | None = None  # deleted by itself from then on, unless pinned (None: never)
    # The safety restore point of an item apply in place holds only the items it replaced
    # (source, path): applying it puts back just those items, never the rest of their sources.
    # None: it holds whole sources.
    items_only: tuple[tuple[str, str], ...] | None = None


@dataclass(frozen=True, slots=True)
class RestorePointFilter:
    """What a restorePoints listing is narrowed to; every field None: no narrowing."""

    origins: tuple[RestorePointOrigin, ...] | None = None
    schedule_id: str | None = None
    pinned: bool | None = None
    created_after: datetime | None = None  # exclusive
    created_before: datetime | None = None  # exclusive
    search: str | None = None  # in the label or the note, case-insensitive
    created_by: str | None = None  # exactly this requester (e.g. "schedule:nightly")
    ids: frozenset[str] | None = None  # only these (e.g. those with a copy at a location)

    @property
    def empty(self) -> bool:
        return all(getattr(self, f.name) is None for f in fields(self))


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """How many of a schedule's restore points to keep; None: no limit by that rule."""

    keep_last: int | None = None
    keep_hourly: int | None = None
    keep_daily: int | None = None
    keep_weekly: int | None = None
    keep_monthly: int | None = None
    keep_yearly: int | None = None
    keep_within_days: int | None = None

    @property
    def limited(self) -> bool:
        """Whether any rule is set (with none, every restore point is kept)."""
        return any(getattr(self, rule.name) is not None for rule in fields(self))


@dataclass(frozen=True, slots=True)
class ScheduledVerification:
    """What a verification schedule's run reads (a verifyBackups of every restore point)."""

    read_percent: int = 100  # the share of the blobs each run reads, a rotation over runs
    outdated_after_days: int = 0  # restore points verified OK within this many days are skipped
    copies: bool = True  # every local and remote copy is read whole too


@dataclass(frozen=True, slots=True)
class Schedule:
    id: str
    name: str
    enabled: bool
    cron: str | None
    time_zone: str  # IANA name
    jitter_seconds: int
    label_template: str | None
    retention: RetentionPolicy
    created_at: datetime
    updated_at: datetime
    next_run_at: datetime | None
    last_run_at: datetime | None
    last_success_at: datetime | None
    last_operation_id: str | None
    # Also fire once the configuration has been quiet this long after a change; None: cron only.
    after_change_quiet_seconds: int | None = None
    copy_to_locations: tuple[str, ...] = ()  # location names each restore point it makes goes to
    last_pruned_at: datetime | None = None  # the retention timer's state, kept across restarts
    # Set: a verification schedule (its runs verify, they make no restore points); None: backups.
    verification: ScheduledVerification | None = None


@dataclass(frozen=True, slots=True)
class OperationError:
    code: OperationErrorCode
    message: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "code", OperationErrorCode(self.code))  # only codes of the enum


@dataclass(frozen=True, slots=True)
class Operation:
    id: str
    kind: OperationKind
    status: OperationStatus
    progress: float
    stage: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    requested_by: str | None
    dismissed: bool
    error: OperationError | None
    restore_point_id: str | None
    local_copy_id: str | None
    params: dict[str, Any] = field(default_factory=dict)
    last_sequence: int = 0

    @property
    def done(self) -> bool:
        return self.status.done


@dataclass(frozen=True, slots=True)
class LogEntry:
    sequence: int
    at: datetime
    level: LogLevel
    message: str


@dataclass(frozen=True, slots=True)
class Module:
    name: str
    settings: dict[str, Any]
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class LocalCopy:
    """A file in the local copies folder, as it is on disk now."""

    id: str
    file_name: str
    path: str
    size: int
    modified_at: datetime
    restore_point_id: str | None  # read from the manifest; None when unreadable
    problem: str | None  # why it cannot be imported; None when it can
    fingerprint: str  # changes whenever the file is replaced or rewritten
    encrypted: bool = False  # an age file (`.zip.age`): decrypted as it is imported
    server_name: str | None = None  # from the manifest: the server that made it; None: unknown


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """A slice of a newest-first listing; each item's cursor continues after it."""

    items: list[T]
    cursors: list[str]
    has_next_page: bool
    total_count: int | None  # None: not counted with the page (counted when asked for)

    @property
    def end_cursor(self) -> str | None:
        return self.cursors[-1] if self.cursors else None


@dataclass(frozen=True, slots=True)
class RemoteCopy:
    """A copy at a backup location (a folder or an S3 bucket), as the location lists it now."""

    id: str  # rc_ + the location and file name (see server/storage/locations/store.py)
    location: str
    file_name: str
    size: int
    modified_at: datetime
    encrypted: bool
    restore_point_id: str | None  # from the object's metadata or the ZIP's manifest; None: unknown
    problem: str | None  # why it cannot be fetched and imported; None when it can
    sha256: str | None = None  # recorded at upload; None for a copy put there by other means
    # False: restore_point_id and sha256 are not read yet (an S3 listing has no metadata; the
    # store's `details` reads it, a HEAD per object); True: they are what the location says.
    detailed: bool = True
    version: str = ""  # the object's ETag, which names the version its metadata was read from
    server_name: str | None = None  # the server that made it (manifest or metadata); None: unknown
