"""Settings from the environment (prefix BACKUPS_), read once at start-up."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from server.web.origins import parse_origin


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BACKUPS_", extra="ignore")

    data_dir: Path = Path("./data")
    config: Path | None = None  # the sources config file (TOML); None: the settings store only
    database_url: str | None = None  # default: SQLite file in data_dir
    local_copies_dir: Path | None = None  # default: <data_dir>/local-copies
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    log_level: str = "info"

    # Limits that keep one client from exhausting the server.
    max_query_depth: int = 12
    max_query_tokens: int = 2000
    max_query_aliases: int = 30
    max_page_size: int = 100
    max_concurrent_operations: int = 2
    max_request_bytes: int = Field(default=1024 * 1024, ge=1024)  # any request but an upload
    max_upload_bytes: int = Field(default=2 * 1024**3, ge=1024)  # a multipart upload
    max_subscriptions_per_connection: int = Field(default=20, ge=1)

    # Access control. "off" is refused unless the server listens on loopback only.
    auth: Literal["on", "off"] = "on"
    # Browser pages on other origins that may call the API (HTTP via CORS, and websockets),
    # comma-separated or a JSON list, e.g. http://localhost:5173. Empty: same origin only.
    allowed_origins: Annotated[list[str], NoDecode] = []
    # How often an open websocket checks that its token is still valid (revoked, expired).
    auth_recheck_seconds: float = Field(default=5.0, gt=0)

    # What an import accepts; anything beyond is refused as hostile before it is read.
    import_max_entries: int = 100_000
    import_max_total_bytes: int = 16 * 1024**3
    import_max_entry_bytes: int = 8 * 1024**3
    import_max_manifest_bytes: int = 32 * 1024**2

    # Signed download links: the key (else generated once into <data_dir>/secret.key) and
    # the longest lifetime a client may ask for.
    secret_key: SecretStr | None = None
    max_download_expiry_seconds: int = 24 * 3600
    public_url: str | None = None  # base URL for links when behind a proxy

    # Applying a restore point: the command that restarts what uses the configuration (run
    # with /bin/sh; unset: an in-process reload), and how long it may take.
    restart_command: str | None = None
    restart_timeout: float = Field(default=60.0, gt=0)

    # Test-only: seconds to sleep after each entry an operation handles, so tests can watch
    # an operation mid-run. Never set it in production.
    test_entry_delay: float = 0.0
    # Test-only: an apply waits at this named step (until the process is killed), or fails
    # there (to exercise the rollback). Steps: server/domain/step_control.py.
    test_pause_at: str | None = None
    test_fail_at: str | None = None

    @field_validator("data_dir", "local_copies_dir", "config")
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
