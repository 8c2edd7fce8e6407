"""The server config: BACKUPS_* settings from the environment, read once at start-up."""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from server.config.origins import parse_origin
from server.model.names import SERVER_NAME_RULE, is_server_name

LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")  # uvicorn's
CONFIG_FILE_VARIABLE = "BACKUPS_CONFIG"  # the config file's variable keeps its short name


class ServerConfig(BaseSettings):
    """The server's config, from BACKUPS_* variables (and `backups serve` options). The test
    seams (BACKUPS_TEST_*) are not in it: they are server/test_seams.py's."""

    model_config = SettingsConfigDict(env_prefix="BACKUPS_", extra="ignore")

    data_dir: Path = Path("./data")
    # The config file (TOML: sources, locations, encryption); None: the settings store only.
    config_file: Path | None = Field(default=None, validation_alias=CONFIG_FILE_VARIABLE)
    database_url: str | None = None  # default: SQLite file in data_dir
    local_copies_dir: Path | None = None  # default: <data_dir>/local-copies
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: Literal["critical", "error", "warning", "info", "debug", "trace"] = "info"

    # Limits that keep one client from exhausting the server.
    max_query_depth: int = Field(default=12, ge=1)
    max_query_tokens: int = Field(default=2000, ge=1)
    max_query_aliases: int = Field(default=30, ge=1)
    max_page_size: int = Field(default=100, ge=1)
    max_concurrent_operations: int = Field(default=2, ge=1)
    max_request_bytes: int = Field(default=1024 * 1024, ge=1024)  # any request but an upload
    max_upload_bytes: int = Field(default=2 * 1024**3, ge=1024)  # a multipart upload
    max_subscriptions_per_connection: int = Field(default=20, ge=1)
    # Slow clients: a request's headers must all arrive within this (else the connection is
    # closed), and its body may stall no longer than this between two pieces (else 408); a
    # download whose client takes nothing for this long is cut off (server/web/download.py).
    header_timeout_seconds: float = Field(default=20.0, gt=0)
    body_timeout_seconds: float = Field(default=60.0, gt=0)

    # The GraphQL fast path (server/api/fast_path, on private Strawberry internals); off:
    # Strawberry's stock execution and subscription handling.
    fast_execution: bool = True

    # Access control. "off" is refused unless the server listens on loopback only.
    auth: Literal["on", "off"] = "on"
    # Browser pages on other origins that may call the API (HTTP via CORS, and websockets),
    # comma-separated or a JSON list, e.g. http://localhost:5173. Empty: same origin only.
    allowed_origins: Annotated[list[str], NoDecode] = []
    # How often an open websocket checks that its token is still valid (revoked, expired).
    auth_recheck_seconds: float = Field(default=5.0, gt=0)

    # Diffs (compareRestorePoints, applyPreview): each side of a text diff is read up to this
    # many bytes, and a unified diff is cut at this many; either cut is flagged (`truncated`).
    diff_text_limit_bytes: int = Field(default=1024 * 1024, ge=1)
    diff_max_bytes: int = Field(default=256 * 1024, ge=1)

    # What an import accepts; anything beyond is refused as hostile before it is read.
    import_max_entries: int = Field(default=100_000, ge=1)
    import_max_total_bytes: int = Field(default=16 * 1024**3, ge=1)
    import_max_entry_bytes: int = Field(default=8 * 1024**3, ge=1)
    import_max_manifest_bytes: int = Field(default=32 * 1024**2, ge=1)

    # Signed download links: the key (else generated once into <data_dir>/secret.key) and
    # the longest lifetime a client may ask for.
    secret_key: SecretStr | None = None
    max_download_expiry_seconds: int = Field(default=24 * 3600, ge=1)
    public_url: str | None = None  # base URL for links when behind a proxy

    # Applying a restore point: the command that restarts what uses the configuration (run
    # with /bin/sh; unset: an in-process reload), and how long it may take.
    restart_command: str | None = None
    restart_timeout: float = Field(default=60.0, gt=0)

    # Backup locations ([[locations]] in the config file): the fixed part size of an S3
    # multipart upload (S3 wants at least 5 MiB), and how many objects one LIST request asks for.
    location_part_bytes: int = Field(default=16 * 1024**2, ge=5 * 1024**2, le=5 * 1024**3)
    location_list_page_size: int = Field(default=1000, ge=1, le=1000)
    # Schedules: how often the scheduler looks at the clock (a test sets it short, and moves
    # its clock instead of waiting minutes).
    scheduler_poll_seconds: float = Field(default=5.0, gt=0)
    # After-change schedules: how often the configuration's fingerprint is compared with the
    # last one seen, for what no notification reports (a database source, an unwatchable folder).
    change_check_seconds: float = Field(default=60.0, gt=0, le=86400)
    # Safety restore points (made before each apply) older than this are deleted by the prune;
    # never a pinned one nor the newest. 0 is refused: never read as "forever" or "at once".
    safety_max_age_days: int = Field(default=30, ge=1, le=36500)
    # backupHealth is a WARNING when no verification (verifyBackups) finished within this many
    # days while a restore point older than that exists; 0: never.
    verification_warning_days: int = Field(default=0, ge=0, le=36500)
    # /metrics (Prometheus text format) without a token; off: a viewer token is needed.
    metrics_public: bool = False

    # This server's name: in `system`, in every copy's manifest and file name, on /metrics, so
    # that copies and series of many installations (a bucket shared by twenty) can be told apart.
    server_name: str = Field(default_factory=socket.gethostname)
    # A dead man's switch (healthchecks.io, Uptime Kuma push): GET this URL after each successful
    # scheduled run, its fail variant after a failed one (server/services/schedules/heartbeat.py).
    heartbeat_url: SecretStr | None = None
    heartbeat_timeout_seconds: float = Field(default=10.0, gt=0, le=300)

    # Small blobs (at most 1 MiB) go into pack files (server/storage/blobs/packs.py); off: each is a
    # file of its own, as before. Either way both kinds are read.
    pack_small_blobs: bool = True

    def __init__(self, **values: Any) -> None:
        # The config file is read from BACKUPS_CONFIG (its alias) and given here by its name.
        if "config_file" in values:
            values[CONFIG_FILE_VARIABLE] = values.pop("config_file")
        super().__init__(**values)

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("data_dir", "local_copies_dir", "config_file", "host", "secret_key", mode="before")
    @classmethod
    def _not_empty(cls, value: object) -> object:
        # An empty path would silently mean the current folder; an empty key signs nothing.
        if isinstance(value, str) and not value.strip():
            raise ValueError("empty")
        return value

    @field_validator("database_url")
    @classmethod
    def _database(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            backend = make_url(value).get_backend_name()
        except ArgumentError:
            raise ValueError("not a database URL") from None
        if backend not in ("sqlite", "postgresql"):
            raise ValueError(f"unsupported database {backend!r}")
        return value

    @field_validator("public_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("not an http(s) URL")
        return value

    @field_validator("heartbeat_url")
    @classmethod
    def _heartbeat(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(("http://", "https://")):
            raise ValueError("not an http(s) URL")
        return value

    @field_validator("server_name")
    @classmethod
    def _server_name(cls, value: str) -> str:
        if not is_server_name(value):
            raise ValueError(SERVER_NAME_RULE)
        return value

    @field_validator("data_dir", "local_copies_dir", "config_file")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        return value.expanduser().resolve() if value is not None else None

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _origins(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            value = json.loads(text) if text.startswith("[") else [part for part in text.split(",") if part.strip()]
        if isinstance(value, list):
            return [parse_origin(str(item)) for item in value]
        return value

    @property
    def auth_enabled(self) -> bool:
        return self.auth == "on"

    @property
    def binds_loopback_only(self) -> bool:
        """Whether `host` is a loopback address, reachable from this machine only."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    @property
    def resolved_local_copies_dir(self) -> Path:
        return self.local_copies_dir or self.data_dir / "local-copies"

    @property
    def blobs_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def apply_journal_path(self) -> Path:
        return self.data_dir / "apply-journal.json"

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'backups.db'}"


# What each setting accepts, for the one line a bad value gets at start-up.
_WHOLE = "a whole number of at least 1"
ACCEPTS = {
    "data_dir": "a folder path",
    "config_file": "the path of a TOML sources file",
    "database_url": "a URL such as sqlite:///path or postgresql://user@host/db",
    "local_copies_dir": "a folder path",
    "host": "an address to listen on, such as 127.0.0.1 or 0.0.0.0",
    "port": "a whole number from 1 to 65535",
    "log_level": ", ".join(LOG_LEVELS),
    "max_query_depth": _WHOLE,
    "max_query_tokens": _WHOLE,
    "max_query_aliases": _WHOLE,
    "max_page_size": _WHOLE,
    "max_concurrent_operations": _WHOLE,
    "max_request_bytes": "a whole number of bytes, at least 1024",
    "max_upload_bytes": "a whole number of bytes, at least 1024",
    "max_subscriptions_per_connection": _WHOLE,
    "fast_execution": "1 or 0 (also true/false, on/off, yes/no)",
    "auth": "on or off",
    "auth_recheck_seconds": "a number of seconds greater than 0",
    "diff_text_limit_bytes": "a whole number of bytes, at least 1",
    "diff_max_bytes": "a whole number of bytes, at least 1",
    "import_max_entries": _WHOLE,
    "import_max_total_bytes": "a whole number of bytes, at least 1",
    "import_max_entry_bytes": "a whole number of bytes, at least 1",
    "import_max_manifest_bytes": "a whole number of bytes, at least 1",
    "secret_key": "a non-empty key",
    "max_download_expiry_seconds": "a whole number of seconds, at least 1",
    "public_url": "an http:// or https:// URL",
    "restart_command": "a shell command",
    "restart_timeout": "a number of seconds greater than 0",
    "location_part_bytes": "a whole number of bytes from 5242880 (5 MiB) to 5 GiB",
    "location_list_page_size": "a whole number from 1 to 1000",
    "scheduler_poll_seconds": "a number of seconds greater than 0",
    "change_check_seconds": "a number of seconds greater than 0, at most 86400",
    "safety_max_age_days": "a whole number of days from 1 to 36500",
    "verification_warning_days": "a whole number of days from 0 (never) to 36500",
    "pack_small_blobs": "true or false",
    "server_name": SERVER_NAME_RULE,
    "heartbeat_url": "an http:// or https:// URL",
    "heartbeat_timeout_seconds": "a number of seconds greater than 0, at most 300",
}
# Settings whose value is never echoed in an error: a key, a URL that may hold a token.
_SECRET_SETTINGS = frozenset({"secret_key", "heartbeat_url"})


class SettingsError(Exception):
    """A setting has a value it does not accept: one line naming it, for the person starting the server."""


def load_config(**overrides: object) -> ServerConfig:
    """The config from the environment (and command-line `overrides`, by field name);
    SettingsError if any value is bad."""
    try:
        return ServerConfig(**overrides)  # pydantic validates each value
    except ValidationError as error:
        raise one_line_error(error, env_prefix="BACKUPS_", accepts=ACCEPTS, overrides=overrides) from None


# A field read from a variable or an option of another name than its own.
_VARIABLES = {"config_file": CONFIG_FILE_VARIABLE}
_OPTIONS = {"config_file": "--config"}


def one_line_error(
    error: ValidationError, *, env_prefix: str, accepts: Mapping[str, str], overrides: Mapping[str, object] = {}
) -> SettingsError:
    """The first bad value of `error` as one line naming its variable (or option) and what it accepts."""
    first = error.errors()[0]
    field = str(first["loc"][0]) if first["loc"] else ""
    field = next((name for name, variable in _VARIABLES.items() if variable.lower() == field.lower()), field)
    expected = accepts.get(field, first["msg"])
    if field in overrides:
        name, value = _OPTIONS.get(field, f"--{field.replace('_', '-')}"), overrides[field]
    else:
        name, value = _VARIABLES.get(field, f"{env_prefix}{field.upper()}"), first.get("input")
    # repr keeps it on one line, whatever the value holds; a key is never echoed.
    shown = "" if field in _SECRET_SETTINGS or not isinstance(value, str | int | float) else f"={value!r}"
    more = len(error.errors()) - 1
    also = f" (and {more} more bad setting{'s' if more > 1 else ''})" if more else ""
    return SettingsError(f"{name}{shown} is not accepted: expected {expected}{also}")
