"""Database tables (SQLModel). Only repositories touch these; the rest sees domain records."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import BigInteger, Column, DateTime, Index, Text, TypeDecorator, text
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no offset of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _utc(**kwargs: object) -> object:
    return Field(sa_column=Column(UTCDateTime(), **kwargs))  # type: ignore[arg-type]


def _big(**kwargs: object) -> object:
    return Field(sa_column=Column(BigInteger(), **kwargs))  # type: ignore[arg-type]


class ModuleRow(SQLModel, table=True):
    __tablename__ = "module"

    name: str = Field(primary_key=True, max_length=64)
    settings: str = Field(sa_column=Column(Text(), nullable=False))  # canonical JSON text
    updated_at: datetime = _utc(nullable=False)  # type: ignore[assignment]


class ManifestRow(SQLModel, table=True):
    """A manifest, held once however many restore points share it (an unchanged source makes
    the same manifest again): its id is the SHA-256 of its entries, mtimes included."""

    __tablename__ = "manifest"

    id: str = Field(primary_key=True, max_length=64)


class RestorePointRow(SQLModel, table=True):
    __tablename__ = "restore_point"
    __table_args__ = (
        Index("ix_restore_point_created", "created_at", "id"),
        Index("ix_restore_point_manifest", "manifest_id"),
        Index("ix_restore_point_schedule", "schedule_id", "created_at", "id"),
        Index("ix_restore_point_expires", "expires_at"),
    )

    id: str = Field(primary_key=True, max_length=40)
    label: str = Field(max_length=200)
    note: str | None = Field(default=None, sa_column=Column(Text(), nullable=True))
    origin: str = Field(max_length=16)
    created_at: datetime = _utc(nullable=False)  # type: ignore[assignment]
    created_by: str | None = Field(default=None, max_length=200)
    size_bytes: int = _big(nullable=False)  # type: ignore[assignment]
    stored_bytes: int = _big(nullable=False)  # type: ignore[assignment]
    item_count: int
    checksum: str = Field(max_length=64)
    server_version: str = Field(max_length=40)
    manifest_id: str = Field(foreign_key="manifest.id", max_length=64)
    pinned: bool = Field(default=False, sa_column_kwargs={"server_default": text("false")})
    # The schedule that made it; NULL for any other, and once that schedule is deleted.
    schedule_id: str | None = Field(default=None, max_length=40)
    expires_at: datetime | None = _utc(nullable=True)  # type: ignore[assignment]
    # JSON [[source, path], ...]: the items an items-only safety restore point covers.
    items_only: str | None = Field(default=None, sa_column=Column(Text(), nullable=True))


class ScheduleRow(SQLModel, table=True):
    """A schedule: when to make restore points, and which of its own to keep."""

    __tablename__ = "schedule"
    __table_args__ = (Index("ix_schedule_name", "name", unique=True),)

    id: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=64)
    enabled: bool
    cron: str | None = Field(default=None, max_length=200)
    time_zone: str = Field(max_length=64)
    jitter_seconds: int = 0
    label_template: str | None = Field(default=None, max_length=200)
    retention: str = Field(sa_column=Column(Text(), nullable=False))  # canonical JSON text
    created_at: datetime = _utc(nullable=False)  # type: ignore[assignment]
    updated_at: datetime = _utc(nullable=False)  # type: ignore[assignment]
    next_run_at: datetime | None = _utc(nullable=True)  # type: ignore[assignment]
    last_run_at: datetime | None = _utc(nullable=True)  # type: ignore[assignment]
    last_success_at: datetime | None = _utc(nullable=True)  # type: ignore[assignment]
    last_operation_id: str | None = Field(default=None, max_length=40)
    after_change_quiet_seconds: int | None = None
    copy_to_locations: str = Field(
        default="[]", sa_column=Column(Text(), nullable=False, server_default="[]")
    )  # JSON list
    last_pruned_at: datetime | None = _utc(nullable=True)  # type: ignore[assignment]
    # JSON of a verification schedule's ScheduledVerification; null: a backup schedule.
    verification: str | None = Field(default=None, sa_column=Column(Text(), nullable=True))


class EntryRow(SQLModel, table=True):
    """One manifest entry; the blob index (sha256) answers "is this blob still used?", the
    children index what is directly inside a folder (browsing a restore point, page by page)."""

    __tablename__ = "manifest_entry"
    __table_args__ = (
        Index("ix_manifest_entry_sha256", "sha256"),
        Index("ix_manifest_entry_children", "manifest_id", "source", "parent", "path"),
    )

    manifest_id: str = Field(primary_key=True, foreign_key="manifest.id", max_length=64)
    position: int = Field(primary_key=True)
    source: str = Field(max_length=64)
    path: str = Field(sa_column=Column(Text(), nullable=False))
    kind: str = Field(max_length=16)
    size: int = _big(nullable=False)  # type: ignore[assignment]
    sha256: str | None = Field(default=None, max_length=64)
    mode: int
    mtime: datetime | None = _utc(nullable=True)  # type: ignore[assignment]
    parent: str = Field(default="", sa_column=Column(Text(), nullable=False, server_default=""))  # "" at the top


class TableRowsRow(SQLModel, table=True):
    """How many rows a table file holds, by its content: counted when it was captured, so a
    listing shows a table's rows without reading its blob."""

    __tablename__ = "table_rows"

    sha256: str = Field(primary_key=True, max_length=64)
    row_count: int = _big(nullable=False)  # type: ignore[assignment]


class OperationRow(SQLModel, table=True):
    __tablename__ = "operation"
    __table_args__ = (
        Index("ix_operation_created", "created_at", "id"),
        Index("ix_operation_status", "status"),
    )

    id: str = Field(primary_key=True, max_length=40)
    kind: str = Field(max_length=32)
    status: str = Field(max_length=16)
    progress: float = 0.0
    stage: str | None = Field(default=None, max_length=200)
    created_at: datetime = _utc(nullable=False)  # type: ignore[assignment]
    started_at: datetime | None = _utc(nullable=True)  # type: ignore[assignment]
    finished_at: datetime | None = _utc(nullable=True)  # type: ignore[assignment]
    requested_by: str | None = Field(default=None, max_length=200)
    dismissed: bool = False
    error_code: str | None = Field(default=None, max_length=64)
    error_message: str | None = Field(default=None, sa_column=Column(Text(), nullable=True))
    restore_point_id: str | None = Field(default=None, max_length=40)
    local_copy_id: str | None = Field(default=None, max_length=400)  # lc_ + a 255-byte name in base64: 343
    params: str = Field(default="{}", sa_column=Column(Text(), nullable=False))
    last_sequence: int = 0  # the newest stored log line
    # Log numbers up to this may have been shown before their lines were stored: after a
    # crash, the next line is numbered after it (server/operations/live.py says why).
    log_reserved_through: int = Field(default=0, sa_column_kwargs={"server_default": text("0")})


class LogRow(SQLModel, table=True):
    __tablename__ = "operation_log"

    operation_id: str = Field(primary_key=True, foreign_key="operation.id", ondelete="CASCADE", max_length=40)
    sequence: int = Field(primary_key=True)
    at: datetime = _utc(nullable=False)  # type: ignore[assignment]
    level: str = Field(max_length=8)
    message: str = Field(sa_column=Column(Text(), nullable=False))


class ApiTokenRow(SQLModel, table=True):
    """An API token: only the SHA-256 of its secret is kept."""

    __tablename__ = "api_token"
    __table_args__ = (
        Index("ix_api_token_hash", "token_hash", unique=True),
        # One active token per name, so the name in an audit trail means one token at a time.
        Index(
            "ix_api_token_active_name",
            "name",
            unique=True,
            sqlite_where=text("revoked_at IS NULL"),
            postgresql_where=text("revoked_at IS NULL"),
        ),
    )

    id: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=64)
    role: str = Field(max_length=16)
    token_hash: str = Field(max_length=64)
    hint: str = Field(max_length=16)
    created_at: datetime = _utc(nullable=False)  # type: ignore[assignment]
    created_by: str | None = Field(default=None, max_length=200)
    expires_at: datetime | None = _utc(nullable=True)  # type: ignore[assignment]
    revoked_at: datetime | None = _utc(nullable=True)  # type: ignore[assignment]


metadata = SQLModel.metadata


class ScheduledCopyRow(SQLModel, table=True):
    """A copy a schedule of this server uploaded to a location: only these are pruned by the
    location's keepLast (a copy another server put there, or one uploaded by hand, is not)."""

    __tablename__ = "scheduled_copy"
    __table_args__ = (Index("ix_scheduled_copy_schedule", "schedule_id", "location"),)

    location: str = Field(primary_key=True, max_length=64)
    file_name: str = Field(primary_key=True, max_length=255)
    schedule_id: str = Field(max_length=40)
    restore_point_id: str = Field(max_length=40)
    uploaded_at: datetime = _utc(nullable=False)  # type: ignore[assignment]


class PackRow(SQLModel, table=True):
    """A pack file of small blobs (server/storage/blobs/packs.py), recorded once it is flushed:
    a pack file without a row is one a crash tore, removed at start-up."""

    __tablename__ = "pack"

    id: str = Field(primary_key=True, max_length=40)
    size_bytes: int = _big(nullable=False)  # type: ignore[assignment]


class PackedBlobRow(SQLModel, table=True):
    """Where a packed blob is: a byte range of one pack. A blob without a row is loose."""

    __tablename__ = "packed_blob"
    __table_args__ = (Index("ix_packed_blob_pack", "pack_id"),)

    sha256: str = Field(primary_key=True, max_length=64)
    pack_id: str = Field(max_length=40)
    start_byte: int = _big(nullable=False)  # type: ignore[assignment]
    size_bytes: int = _big(nullable=False)  # type: ignore[assignment]


class VerificationRow(SQLModel, table=True):
    """The last verification of a restore point, local copy or remote copy (verifyBackups)."""

    __tablename__ = "verification"

    kind: str = Field(primary_key=True, max_length=20)  # server.model.verification.VerifiedKind
    subject_id: str = Field(primary_key=True, max_length=400)  # a local copy's id holds its file name
    state: str = Field(max_length=10)
    verified_at: datetime = _utc(nullable=False)  # type: ignore[assignment]
    problems: str = Field(sa_column=Column(Text(), nullable=False))  # a JSON list of strings
    repaired: int = Field(default=0)
    sha256: str | None = Field(default=None, max_length=64)  # a remote copy's file, as last found OK


class VerificationTotalsRow(SQLModel, table=True):
    """One row ("blobs"): what /metrics counts over every verification, and the rotation's cursor."""

    __tablename__ = "verification_totals"

    name: str = Field(primary_key=True, max_length=20)
    cursor: str | None = Field(default=None, max_length=64)
    bytes_read: int = _big(nullable=False)  # type: ignore[assignment]
    repaired: int = _big(nullable=False)  # type: ignore[assignment]
    last_finished_at: datetime | None = _utc(nullable=True)  # type: ignore[assignment]


class NotificationTargetRow(SQLModel, table=True):
    """A notification target's last delivery, by the target's name in the config file (a target
    renamed or removed leaves a row nobody reads)."""

    __tablename__ = "notification_target"

    name: str = Field(primary_key=True, max_length=64)
    last_sent_at: datetime | None = _utc(nullable=True)  # type: ignore[assignment]
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
