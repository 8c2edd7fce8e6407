"""The config file (backups.toml) a test's server reads: a folder source `site` (and the settings
source if asked), S3 and folder locations, and whatever else a test appends."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from tests.support.seaweedfs import ACCESS_KEY, SECRET_KEY

PAGE = "<h1>été</h1>"


@dataclass(frozen=True)
class Bucket:
    """An S3 location. `encrypt=None` leaves the key out (an S3 location then encrypts)."""

    endpoint: str
    bucket: str
    name: str = "bucket"
    prefix: str = "backups/"
    encrypt: bool | None = False
    keep_last: int | None = None

    def table(self, credentials: Path) -> str:
        return (
            f'\n[[locations]]\nname = "{self.name}"\nkind = "s3"\nendpoint = "{self.endpoint}"\n'
            f'bucket = "{self.bucket}"\nprefix = "{self.prefix}"\ncredentials_file = "{credentials}"\n'
            + ("" if self.encrypt is None else f"encrypt = {str(self.encrypt).lower()}\n")
            + _keep_last(self.keep_last)
        )


@dataclass(frozen=True)
class Share:
    """A folder location (the folder is made if missing)."""

    path: Path
    name: str = "share"
    keep_last: int | None = None

    def table(self) -> str:
        self.path.mkdir(exist_ok=True)
        return f'\n[[locations]]\nname = "{self.name}"\nkind = "folder"\npath = "{self.path}"\n' + _keep_last(
            self.keep_last
        )


def _keep_last(count: int | None) -> str:
    return f"keepLast = {count}\n" if count else ""


def write_config(
    tmp: Path,
    *locations: Bucket | Share,
    settings: bool = False,
    page: bool = True,
    secret: str = SECRET_KEY,
    recipients: list[str] | None = None,
    extra: str = "",
) -> Path:
    """Write `tmp`/backups.toml: the settings source if `settings`, the folder source `site`
    (`tmp`/site, made if missing, holding page.html if `page`), an [encryption] table with these
    `recipients` if given, these locations (the buckets' credentials, with `secret`, in a file of
    their own), then `extra` as it is. Its path."""
    site = tmp / "site"
    site.mkdir(exist_ok=True)
    if page:
        (site / "page.html").write_text(PAGE)
    text = '[[sources]]\nname = "settings"\nkind = "settings"\n\n' if settings else ""
    text += f'[[sources]]\nname = "site"\nkind = "directory"\npath = "{site}"\n'
    if recipients is not None:
        text += "\n[encryption]\nrecipients = [" + ", ".join(f'"{r}"' for r in recipients) + "]\n"
    if any(isinstance(location, Bucket) for location in locations):
        credentials = tmp / f"creds-{uuid.uuid4().hex[:6]}.toml"
        credentials.write_text(f'access_key_id = "{ACCESS_KEY}"\nsecret_access_key = "{secret}"\n')
    for location in locations:
        text += location.table(credentials) if isinstance(location, Bucket) else location.table()
    config = tmp / "backups.toml"
    config.write_text(text + extra)
    return config
