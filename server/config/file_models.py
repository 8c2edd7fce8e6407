"""The config file (TOML) as pydantic models: what each table may hold, checked in one parse.

A source and a location are each one model per `kind` (a discriminated union); `extra="forbid"`
refuses unknown keys and `strict=True` takes no "5" for 5 nor true for 1. These rules need
nothing but the file's text; paths, credentials and overlaps need the machine and come after
(server/config/config_file.py). What a key expects is said in each model's `EXPECTS`, for the
one line a wrong value gets (server/config/file_errors.py).
The format: docs/configuration/ (sources.md, locations.md, encryption.md) and docs/notifications.md.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal
from urllib.parse import urlsplit

import pyrage
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pyrage import x25519
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from server.config.notifications_file import EVENT_NAMES, parse_apprise_url, url_scheme
from server.model.globs import GlobError, compile_glob
from server.model.names import SOURCE_NAME_RULE, is_source_name
from server.model.notifications import NotificationEvent

LOCAL = "local"  # the built-in location: the local copies folder, never declared
MAX_KEEP_LAST = 100_000
NonBlank = Annotated[str, StringConstraints(pattern=r"\S")]
NonEmpty = Annotated[str, StringConstraints(min_length=1)]
DATABASE_URLS = "sqlite:///file.db or postgresql://..."


class Table(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    EXPECTS: ClassVar[dict[str, str]] = {}  # by key: what a wrong value gets told ({kind}, {got})


def _unique(values: list[str] | None, key: str) -> list[str] | None:
    if values is not None and len(set(values)) != len(values):
        raise ValueError(f"{key} lists the same value twice")
    return values


def _named(name: str) -> str:
    if not is_source_name(name):
        raise ValueError(NAME_RULE)
    return name


def _not_local(name: str) -> str:
    if name == LOCAL:
        raise ValueError("the name 'local' is the built-in location (the local copies folder)")
    return name


NAME_RULE = f"name must be {SOURCE_NAME_RULE}"
SourceName = Annotated[str, AfterValidator(_named)]
LocationName = Annotated[str, AfterValidator(_named), AfterValidator(_not_local)]


class SourceEntry(Table):
    EXPECTS = {"name": NAME_RULE}
    name: SourceName


class SettingsEntry(SourceEntry):
    """The built-in settings store."""

    kind: Literal["settings"]


class FolderEntry(SourceEntry):
    """A folder's files; "directory" is the older word for the kind, still accepted."""

    EXPECTS = SourceEntry.EXPECTS | {
        "path": "a {kind} source needs a path",
        "include": "include must be a list of strings",
        "exclude": "exclude must be a list of strings",
        "verify": 'verify must be "fast" or "full" (got {got})',
    }
    kind: Literal["folder", "directory"]
    path: NonBlank  # absolute, or relative to the config file's folder
    include: list[str] | None = None  # None: everything
    exclude: list[str] | None = None
    verify: Literal["fast", "full"] = "fast"  # "full": read every file on every restore point

    @field_validator("include", "exclude")
    @classmethod
    def _globs(cls, patterns: list[str] | None, info: ValidationInfo) -> list[str] | None:
        for pattern in _unique(patterns, str(info.field_name)) or ():
            try:
                compile_glob(pattern)
            except GlobError as error:
                raise ValueError(str(error)) from None
        return patterns


class DatabaseEntry(SourceEntry):
    """Tables of a SQLite file or a PostgreSQL database."""

    EXPECTS = SourceEntry.EXPECTS | {
        "url": f"a database source needs a url ({DATABASE_URLS})",
        "tables": "tables must be a list of strings",
        "schema": "schema must be a non-empty string",
    }
    kind: Literal["database"]
    url: NonBlank
    tables: list[str] | None = None  # None: every table
    db_schema: NonEmpty | None = Field(None, alias="schema")  # PostgreSQL only

    @field_validator("url")
    @classmethod
    def _url(cls, text: str) -> str:
        try:
            url = make_url(text.strip())
        except ArgumentError:
            raise ValueError(f"url is not a database URL ({DATABASE_URLS})") from None
        backend = url.get_backend_name()
        if backend not in ("sqlite", "postgresql"):
            raise ValueError(f"unsupported database {backend!r}: use a SQLite file or PostgreSQL")
        if backend == "sqlite" and (not url.database or url.database == ":memory:"):
            raise ValueError("a SQLite url must name a database file (sqlite:///path/to/file.db)")
        return text.strip()

    @field_validator("tables")
    @classmethod
    def _tables(cls, tables: list[str] | None) -> list[str] | None:
        for table in _unique(tables, "tables") or ():
            if not table or "/" in table or "\0" in table or table.startswith("."):
                raise ValueError(f"table name {table!r} cannot be a file name in a restore point")
        if tables is not None and not tables:
            raise ValueError("tables is empty: leave it out to capture every table")
        return tables

    @model_validator(mode="after")
    def _schema(self) -> DatabaseEntry:
        if self.db_schema is not None and make_url(self.url).get_backend_name() == "sqlite":
            raise ValueError("schema applies to PostgreSQL only")
        return self


class LocationEntry(Table):
    EXPECTS = {
        "name": NAME_RULE,
        "encrypt": "encrypt must be true or false",
        "keepLast": f"keepLast must be a whole number from 1 to {MAX_KEEP_LAST} (got {{got}}); leave it out for no limit",
    }
    name: LocationName
    keep_last: int | None = Field(None, alias="keepLast", ge=1, le=MAX_KEEP_LAST)  # None: no limit


class FolderLocationEntry(LocationEntry):
    """A mounted disk or share."""

    EXPECTS = LocationEntry.EXPECTS | {"path": "a folder location needs a path"}
    kind: Literal["folder"]
    path: NonBlank
    encrypt: bool = False  # a folder is usually a disk of one's own: plain unless asked


class S3LocationEntry(LocationEntry):
    """S3-compatible object storage; the key pair from named environment variables or a file."""

    EXPECTS = LocationEntry.EXPECTS | {
        "endpoint": "endpoint must be an http:// or https:// URL",
        "bucket": "bucket must be a bucket name (3 to 63 characters, no '/')",
        "region": "region must be a string",
        "prefix": "prefix must be a string",
        "path_style": "path_style must be true or false",
        "ca_file": "ca_file must be the path of a PEM file",
        "access_key_id_env": "access_key_id_env must name an environment variable",
        "secret_access_key_env": "secret_access_key_env must name an environment variable",
        "credentials_file": "credentials_file must be a path",
    }
    kind: Literal["s3"]
    endpoint: str
    bucket: str
    region: str = "us-east-1"
    prefix: str = ""
    path_style: bool = True  # most S3-compatible stores want path-style addressing
    ca_file: NonBlank | None = None
    access_key_id_env: NonEmpty | None = None
    secret_access_key_env: NonEmpty | None = None
    credentials_file: NonBlank | None = None
    encrypt: bool = True  # a bucket is someone else's machine: encrypted unless opted out

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, endpoint: str) -> str:
        if not endpoint.startswith(("http://", "https://")):
            raise ValueError("endpoint must be an http:// or https:// URL")
        if _has_userinfo(endpoint):  # the endpoint is shown in messages; the URL itself is not echoed
            raise ValueError(
                "endpoint must not hold a user or password (user:password@host): give the access key as "
                "access_key_id_env and secret_access_key_env, or in credentials_file"
            )
        return endpoint

    @field_validator("bucket")
    @classmethod
    def _bucket(cls, bucket: str) -> str:
        if not 3 <= len(bucket) <= 63 or bucket != bucket.strip() or "/" in bucket:
            raise ValueError("bucket must be a bucket name (3 to 63 characters, no '/')")
        return bucket

    @model_validator(mode="after")
    def _one_way_to_credentials(self) -> S3LocationEntry:
        by_env = self.access_key_id_env is not None or self.secret_access_key_env is not None
        if by_env == (self.credentials_file is not None):
            raise ValueError(
                "give the credentials as access_key_id_env and secret_access_key_env, or as credentials_file"
            )
        for key in ("access_key_id_env", "secret_access_key_env"):
            if by_env and getattr(self, key) is None:
                raise ValueError(self.EXPECTS[key])
        return self


def _has_userinfo(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return "@" in url
    return parts.username is not None or parts.password is not None or "@" in parts.netloc


class EncryptionTable(Table):
    """Recovery recipients: every encrypted copy is encrypted to each of them too."""

    EXPECTS = {"recipients": 'recipients must be a list of strings ("age1...")'}
    recipients: list[str] = []

    @field_validator("recipients")
    @classmethod
    def _recipients(cls, recipients: list[str]) -> list[str]:
        for index, text in enumerate(recipients):
            problem = _recipient_problem(text)
            if problem is not None:
                raise ValueError(f"recipients[{index}] {problem}")
        return list(dict.fromkeys(recipients))


def _recipient_problem(text: str) -> str | None:
    shown = text if len(text) <= 80 else text[:77] + "..."
    if text.startswith("AGE-SECRET-KEY-"):
        return "is a private identity, not a recipient: give its public key (age1...) and keep the identity away"
    if not text.startswith("age1"):
        return f"{shown!r} is not an age X25519 recipient (age1...)"
    try:
        x25519.Recipient.from_str(text)
    except pyrage.RecipientError as error:
        return f"{shown!r} is not a valid age recipient ({error})"
    return None


class NotificationEntry(Table):
    """A `[[notifications]]` target: an Apprise URL (or a file holding it) and the events it wants
    (server/config/notifications_file.py makes it a target)."""

    EXPECTS = {
        "name": NAME_RULE,
        "url": "url must be an Apprise URL (a string such as json://host/path or mailto://...)",
        "url_file": "url_file must be the path of a file holding an Apprise URL",
        "events": f"events must be a list of event names ({EVENT_NAMES})",
    }
    name: SourceName
    url: NonBlank | None = None
    url_file: NonBlank | None = None  # absolute, or relative to the config file's folder
    events: list[str] = list(NotificationEvent)

    @field_validator("events")
    @classmethod
    def _events(cls, events: list[str]) -> list[str]:
        if not events:
            raise ValueError(f"events is empty: list what the target wants ({EVENT_NAMES})")
        for event in events:
            if event not in NotificationEvent.__members__:
                raise ValueError(f"unknown event {event!r} in events (known: {EVENT_NAMES})")
        _unique(events, "events")
        return events

    @field_validator("url")
    @classmethod
    def _url(cls, url: str | None) -> str | None:
        if url is not None and parse_apprise_url(url.strip()) is None:
            raise ValueError(f"url is not an Apprise URL that can be used ({url_scheme(url)}...)")
        return url.strip() if url is not None else None

    @model_validator(mode="after")
    def _one_url(self) -> NotificationEntry:
        if (self.url is None) == (self.url_file is None):
            raise ValueError("give the Apprise URL as url or as url_file (a file holding it), one of the two")
        return self


Source = Annotated[SettingsEntry | FolderEntry | DatabaseEntry, Field(discriminator="kind")]
Location = Annotated[FolderLocationEntry | S3LocationEntry, Field(discriminator="kind")]
SOURCE_KINDS: dict[str, type[Table]] = {
    "settings": SettingsEntry,
    "folder": FolderEntry,
    "directory": FolderEntry,
    "database": DatabaseEntry,
}
LOCATION_KINDS: dict[str, type[Table]] = {"folder": FolderLocationEntry, "s3": S3LocationEntry}
OLDER_KINDS = ("directory",)  # accepted, not listed in messages: "folder" is the word for both


class ConfigDocument(Table):
    """The whole file: `[[sources]]`, `[[locations]]`, `[encryption]` and `[[notifications]]`."""

    sources: list[Source] = Field(min_length=1)
    locations: list[Location] = []
    encryption: EncryptionTable = EncryptionTable()
    notifications: list[NotificationEntry] = []

    @field_validator("sources")
    @classmethod
    def _sources(cls, sources: list[Source]) -> list[Source]:
        _check_names_unique(sources, "source")
        if sum(isinstance(source, SettingsEntry) for source in sources) > 1:
            raise ValueError("only one settings source can be declared")
        return sources

    @field_validator("locations")
    @classmethod
    def _locations(cls, locations: list[Location]) -> list[Location]:
        _check_names_unique(locations, "location")
        return locations

    @field_validator("notifications")
    @classmethod
    def _notifications(cls, targets: list[NotificationEntry]) -> list[NotificationEntry]:
        _check_names_unique(targets, "notification")
        return targets


class EncryptionPart(BaseModel):
    """The `[encryption]` table alone, the rest of the file unchecked (for `backups key`)."""

    model_config = ConfigDict(strict=True, extra="ignore")
    encryption: EncryptionTable = EncryptionTable()


def _check_names_unique(entries: list[Source] | list[Location] | list[NotificationEntry], word: str) -> None:
    seen: set[str] = set()
    for entry in entries:
        if entry.name in seen:
            raise ValueError(f"{word} {entry.name!r}: the name is used twice")
        seen.add(entry.name)
