"""The config file (TOML) as pydantic models: what each table may hold, checked in one parse.

A source and a location are each one model per `kind` (a discriminated union); `extra="forbid"`
refuses unknown keys and `strict=True` takes no "5" for 5 nor true for 1. These rules need
nothing but the file's text; paths, credentials and overlaps need the machine and come after
(server/config/config_file.py). A pydantic error becomes the one line a person reads in
`explain`: what a key expects is each model's `EXPECTS`, a validator's message is used as it is.
See README.md ("Sources", "Backup locations", "Encrypted copies") for the format.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit

import pyrage
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails
from pyrage import x25519
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from server.model.globs import GlobError, compile_glob
from server.model.names import SOURCE_NAME_RULE, is_source_name

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


class SourceEntry(Table):
    EXPECTS = {"name": f"name must be {SOURCE_NAME_RULE}"}
    name: str

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not is_source_name(name):
            raise ValueError(f"name must be {SOURCE_NAME_RULE}")
        return name


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
        "name": f"name must be {SOURCE_NAME_RULE}",
        "encrypt": "encrypt must be true or false",
        "keepLast": f"keepLast must be a whole number from 1 to {MAX_KEEP_LAST} (got {{got}}); leave it out for no limit",
    }
    name: str
    keep_last: int | None = Field(None, alias="keepLast", ge=1, le=MAX_KEEP_LAST)  # None: no limit

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not is_source_name(name):
            raise ValueError(f"name must be {SOURCE_NAME_RULE}")
        if name == LOCAL:
            raise ValueError("the name 'local' is the built-in location (the local copies folder)")
        return name


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
    """The whole file: `[[sources]]`, `[[locations]]` and `[encryption]`."""

    sources: list[Source] = Field(min_length=1)
    locations: list[Location] = []
    encryption: EncryptionTable = EncryptionTable()

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


class EncryptionPart(BaseModel):
    """The `[encryption]` table alone, the rest of the file unchecked (for `backups key`)."""

    model_config = ConfigDict(strict=True, extra="ignore")
    encryption: EncryptionTable = EncryptionTable()


def _check_names_unique(entries: list[Source] | list[Location], word: str) -> None:
    seen: set[str] = set()
    for entry in entries:
        if entry.name in seen:
            raise ValueError(f"{word} {entry.name!r}: the name is used twice")
        seen.add(entry.name)


# What a section that is not what it should be gets told.
SECTIONS = {
    "sources": ("source", SOURCE_KINDS, "declares no sources (add [[sources]] tables)"),
    "locations": ("location", LOCATION_KINDS, "locations must be [[locations]] tables"),
    "encryption": ("", {}, "encryption must be an [encryption] table"),
}


def explain(error: ValidationError, document: dict[str, Any]) -> str:
    """The first thing wrong in the file, as one line naming the entry, the key and the problem.

    "First" as a person reads the file: a misspelt top-level key, then each section in turn,
    its entries in order, and in an entry its name, then its kind, then an unknown key."""
    return _line(min(error.errors(), key=_reading_order), document)


def _reading_order(error: ErrorDetails) -> tuple[int, int, int, str]:
    loc = error["loc"]
    if len(loc) == 1 and error["type"] == "extra_forbidden":
        return (0, 0, 0, str(loc[0]))
    section = list(SECTIONS).index(str(loc[0])) + 1
    index = loc[1] if len(loc) > 1 and isinstance(loc[1], int) else 0
    key = [part for part in loc if isinstance(part, str)][-1] if len(loc) > 1 else ""
    if key == "name":
        rank = 0
    elif error["type"].startswith("union_tag"):
        rank = 1
    elif error["type"] == "extra_forbidden":
        return (section, index, 2, key)  # the first unknown key in sorted order, as listed in "allowed"
    else:
        rank = 3
    return (section, index, rank, "")  # min() keeps pydantic's order (the models' field order) among equals


def _line(error: ErrorDetails, document: dict[str, Any]) -> str:
    loc, kind_of_error = error["loc"], error["type"]
    if len(loc) == 1 and kind_of_error == "extra_forbidden":
        return f"unknown top-level key {loc[0]!r} (allowed: [[sources]], [[locations]], [encryption])"
    section = str(loc[0])
    word, kinds, wrong_section = SECTIONS[section]
    if len(loc) == 1:  # the section itself, or a rule across its entries
        return _message(error) if kind_of_error == "value_error" else wrong_section
    if section == "encryption":
        key = str(loc[1])
        if kind_of_error == "extra_forbidden":
            return f"[encryption]: unknown key {key!r} (allowed: recipients)"
        return f"[encryption]: {_message(error) if kind_of_error == 'value_error' else EncryptionTable.EXPECTS[key]}"
    index = int(loc[1])
    entry = document[section][index]
    if not isinstance(entry, dict):
        return f"{section}[{index}] is not a table"
    name = entry.get("name")
    label = f"{word} {name!r}" if isinstance(name, str) else f"{section}[{index}]"
    if len(loc) == 2:  # no kind, or one we do not know
        shown = ", ".join(kind for kind in kinds if kind not in OLDER_KINDS)
        return f"{label}: kind must be one of {shown} (got {entry.get('kind')!r})"
    kind, model = str(loc[2]), kinds[str(loc[2])]
    if len(loc) == 3:  # a rule across the entry's keys
        return f"{label}: {_message(error)}"
    key = str(loc[3])
    if kind_of_error == "extra_forbidden":
        allowed = sorted(field.alias or field_name for field_name, field in model.model_fields.items())
        return f"{label}: unknown key {key!r} for a {kind} {word} (allowed: {', '.join(allowed)})"
    if kind_of_error == "value_error":
        return f"{label}: {_message(error)}"
    expects = model.EXPECTS.get(key)  # every key has one (a test checks); pydantic's words otherwise
    if expects is None:
        return f"{label}: {key}: {error['msg']}"
    return f"{label}: " + expects.format(kind=kind, got=repr(entry.get(key)))


def _message(error: ErrorDetails) -> str:
    """A validator's own message (pydantic prefixes it with "Value error, ")."""
    return str(error.get("ctx", {}).get("error", error["msg"]))
