"""What every kind of backup location offers (folder, S3), and the ids of the copies there.

Each store's methods block (file system, HTTP); callers run them in worker threads. A store
that cannot be reached raises LocationUnavailable with a message naming the location."""

from __future__ import annotations

import base64
import binascii
import builtins
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, Protocol

from server.model.records import RemoteCopy
from server.model.url_credentials import mask_url_credentials

ID_PREFIX = "rc_"
CHUNK = 1024 * 1024


class LocationUnavailable(Exception):
    """The location cannot be reached or refuses us (endpoint down, wrong credentials, no bucket)."""

    def __init__(self, location: str, detail: str) -> None:
        # A store's own errors may quote a URL with a user and password in it: never shown.
        super().__init__(mask_url_credentials(f"location {location!r} is unavailable: {detail}"))
        self.location = location
        self.message = str(self)


class CopyMismatch(Exception):
    """What a location holds after an upload is not what was sent (nothing is kept)."""


class TransferCancelled(Exception):
    """An upload or fetch stopped because its operation was cancelled (nothing kept)."""


def remote_copy_id(location: str, file_name: str) -> str:
    """The id of the copy named `file_name` at `location`: stable, derived from both."""
    raw = f"{location}/{file_name}".encode()
    return ID_PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def parse_remote_copy_id(copy_id: str) -> tuple[str, str] | None:
    """(location, file name) for an id of ours, else None."""
    if not copy_id.startswith(ID_PREFIX):
        return None
    body = copy_id[len(ID_PREFIX) :]
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    location, slash, name = raw.partition("/")
    if not slash or not is_copy_name(name) or remote_copy_id(location, name) != copy_id:
        return None
    return location, name


def is_copy_name(name: str) -> bool:
    """A name a location lists as a copy: a plain visible file name ending in .zip (or
    .zip.age, an encrypted copy)."""
    return (
        bool(name)
        and "/" not in name
        and "\\" not in name
        and "\0" not in name
        and not name.startswith(".")
        and name.lower().endswith((".zip", ".zip.age"))
    )


OnBytes = Callable[[int], None]
ShouldStop = Callable[[], bool]


class LocationStore(Protocol):
    name: str
    kind: str  # "FOLDER" | "S3"
    encrypt: bool  # plain copies uploaded here are age-encrypted on the way

    def list(self) -> builtins.list[RemoteCopy]:
        """Every copy there now, newest first."""
        ...

    def details(self, copies: builtins.list[RemoteCopy]) -> builtins.list[RemoteCopy]:
        """The same copies, each with its restore point id and SHA-256 read (`detailed`)."""
        ...

    def stat(self, file_name: str) -> RemoteCopy | None:
        """One copy by its name; None when it is not there."""
        ...

    def upload(
        self,
        source: Path,
        file_name: str,
        *,
        sha256: str,
        restore_point_id: str | None,
        on_bytes: OnBytes,
        should_stop: ShouldStop,
        server_name: str | None = None,
    ) -> str:
        """Stream `source` there under `file_name` (or a free variant of it), verify what
        arrived against `sha256` and its size, and return the name used; nothing stays on failure.
        `server_name` (the server that made the copy) goes with it where the store keeps metadata.
        LocationUnavailable when it cannot be reached, StorageFull when it has no room left."""
        ...

    def download(self, file_name: str, out: BinaryIO, *, on_bytes: OnBytes, should_stop: ShouldStop) -> None:
        """Stream the copy's bytes into `out`."""
        ...

    def delete(self, file_name: str) -> bool:
        """Remove the copy; False when it was not there."""
        ...

    def abort_unfinished(self) -> int:
        """Abort what uploads a crash cut off left at the location; how many (best effort)."""
        ...
