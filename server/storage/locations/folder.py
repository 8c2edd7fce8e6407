"""A backup location that is a folder (a mounted disk or share).

An upload is written under a hidden temp name in the folder, read back and checked (size and
SHA-256 against what was sent), and only then given its name, exclusively: a half-written or
unchecked copy never appears under a copy's name. The temp file is recorded in the data folder
while it is written (unfinished.py), so one a crash left behind is removed at start-up or at the
location's next use; two servers may share the folder, and one never removes a temp file it has
no record of. Listing reads each ZIP's manifest (its central directory and manifest member, not
the whole file), once per version of a file."""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from server.model.errors import InvalidArchive
from server.model.records import RemoteCopy
from server.storage.durability import atomic_write, is_temp_name
from server.storage.encryption import Keyring, is_encrypted_name
from server.storage.full import files_full
from server.storage.local_copy.folder import (
    ManifestFacts,
    facts_of,
    fingerprint,
    link_exclusively,
    read_encrypted_id,
    split_copy_name,
)
from server.storage.local_copy.format import ArchiveLimits, read_manifest
from server.storage.locations.store import (
    CHUNK,
    CopyMismatch,
    LocationUnavailable,
    OnBytes,
    ShouldStop,
    TransferCancelled,
    is_copy_name,
    remote_copy_id,
)
from server.storage.locations.unfinished import UnfinishedUploads


class FolderStore:
    kind = "FOLDER"

    def __init__(
        self,
        name: str,
        root: Path,
        limits: ArchiveLimits = ArchiveLimits(),
        *,
        keyring: Keyring | None = None,
        encrypt: bool = False,
        unfinished: UnfinishedUploads | None = None,
        chunk_delay: float = 0.0,
    ) -> None:
        self.name = name
        self.root = root
        self.limits = limits
        self.keyring = keyring
        self.encrypt = encrypt  # plain copies uploaded here are encrypted on the way
        self._known: dict[tuple[str, str], ManifestFacts] = {}
        self._lock = threading.Lock()
        self._unfinished = unfinished  # records of our temp files there; None: not recorded
        self._chunk_delay = chunk_delay  # test-only (BACKUPS_TEST_ENTRY_DELAY): a pause per chunk

    def _check(self) -> None:
        if not self.root.is_dir():
            raise LocationUnavailable(self.name, f"the folder {self.root} does not exist (is the disk mounted?)")
        if not os.access(self.root, os.R_OK | os.X_OK):
            raise LocationUnavailable(self.name, f"the folder {self.root} cannot be read")

    def list(self) -> builtins.list[RemoteCopy]:
        self._check()
        copies = []
        try:
            with os.scandir(self.root) as entries:
                for entry in entries:
                    if is_copy_name(entry.name) and entry.is_file(follow_symlinks=False):
                        copies.append(self._describe(entry.name, entry.stat(follow_symlinks=False)))
        except OSError as error:
            raise LocationUnavailable(self.name, f"the folder {self.root} cannot be listed: {error.strerror}") from None
        return sorted(copies, key=lambda c: (c.modified_at, c.file_name), reverse=True)

    def details(self, copies: builtins.list[RemoteCopy]) -> builtins.list[RemoteCopy]:
        return copies  # listing read each manifest already

    def stat(self, file_name: str) -> RemoteCopy | None:
        self._check()
        try:
            stat = (self.root / file_name).stat(follow_symlinks=False)
        except (FileNotFoundError, NotADirectoryError):
            return None
        return self._describe(file_name, stat)

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
        self._check()
        self.abort_unfinished()  # what a crash cut off is removed at the location's next use
        record = None
        try:
            with atomic_write(self.root / file_name) as pending, source.open("rb") as src:
                if self._unfinished is not None:  # before its first byte: a crash leaves it empty at most
                    record = self._unfinished.begin(str(self.root), pending.temp.name)
                while chunk := src.read(CHUNK):
                    if should_stop():
                        raise TransferCancelled("upload cancelled")
                    pending.file.write(chunk)
                    on_bytes(len(chunk))
                    if self._chunk_delay:
                        time.sleep(self._chunk_delay)  # a worker thread: the event loop goes on
                size = pending.sync()
                # Read back what the disk holds, not what was handed to it.
                got_size, got_sha = _digest(pending.temp)
                if got_size != size or got_size != source.stat().st_size or got_sha != sha256:
                    raise CopyMismatch(f"the copy written to {self.root} does not match what was sent")
                name = self._place(pending.temp, file_name)
                pending.placed_at(self.root / name)
        except OSError as error:
            if (full := files_full(error, f"location {self.name!r} ({self.root})")) is not None:
                raise full from None  # STORAGE_FULL: the location answers, it has no room
            raise LocationUnavailable(self.name, f"cannot write to {self.root}: {error.strerror or error}") from None
        finally:
            if self._unfinished is not None and record is not None:
                self._unfinished.end(record)  # placed or removed by atomic_write either way
        with self._lock:
            self._known.pop((name, ""), None)
        return name

    def download(self, file_name: str, out: BinaryIO, *, on_bytes: OnBytes, should_stop: ShouldStop) -> None:
        self._check()
        with (self.root / file_name).open("rb") as src:
            while chunk := src.read(CHUNK):
                if should_stop():
                    raise TransferCancelled("fetch cancelled")
                out.write(chunk)
                on_bytes(len(chunk))

    def delete(self, file_name: str) -> bool:
        self._check()
        try:
            (self.root / file_name).unlink()
        except FileNotFoundError:
            return False
        return True

    def abort_unfinished(self) -> int:
        """Remove the temp files of uploads a crash cut off (recorded, not running now); how many."""
        if self._unfinished is None:
            return 0
        removed = 0
        for entry in self._unfinished.left_over():
            # Only a temp file's name, in this folder (a location moved elsewhere: the record goes).
            if entry.bucket == str(self.root) and is_temp_name(entry.key) and "/" not in entry.key:
                with contextlib.suppress(FileNotFoundError):
                    (self.root / entry.key).unlink()
                    removed += 1
            self._unfinished.end(entry.record)
        return removed

    def _place(self, temp: Path, name: str) -> str:
        (stem, ending), counter, candidate = split_copy_name(name), 2, name
        while True:
            try:
                link_exclusively(temp, self.root / candidate)
                return candidate
            except FileExistsError:
                candidate = f"{stem}-{counter}{ending}"
                counter += 1

    def _describe(self, name: str, stat: os.stat_result) -> RemoteCopy:
        encrypted = is_encrypted_name(name)
        key = (name, fingerprint(stat))
        if encrypted and self.keyring is not None:  # read again once a key is added
            key = (name, f"{key[1]}-{self.keyring.version()}")
        with self._lock:
            known = self._known.get(key)
        if known is None and encrypted:
            known = read_encrypted_id(self.root / name, self.keyring, self.limits)
            with self._lock:
                self._known[key] = known
        if known is None:
            try:
                manifest = read_manifest(self.root / name, self.limits)
                known = facts_of(manifest)
            except InvalidArchive as error:
                known = ManifestFacts(None, error.message)
            except OSError as error:
                known = ManifestFacts(None, f"cannot be read: {error.strerror or error}")
            with self._lock:
                self._known[key] = known
        return RemoteCopy(
            id=remote_copy_id(self.name, name),
            location=self.name,
            file_name=name,
            size=stat.st_size,
            modified_at=datetime.fromtimestamp(stat.st_mtime, UTC),
            encrypted=encrypted,
            restore_point_id=known.restore_point_id,
            problem=known.problem,
            server_name=known.server_name,
        )


def _digest(path: Path) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()
