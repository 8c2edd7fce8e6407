"""The S3 multipart uploads this server started and has not finished, recorded durably so that
the ones a crash cut off are aborted later (at start-up, or when the location is next used).

One small JSON file per upload in the server's data folder, written before the upload is
created (the key and the time) and again once the store gave its upload id, removed when the
upload completed or was aborted. A record is what makes an upload ours: two servers may share
a bucket, and one never aborts an upload it has no record of. A record without an upload id
(a crash between creating the upload and writing its id) matches an upload of the same key
started within a minute of it, and only once that upload is older than STALE_SECONDS: another
server writing the same key right now is left alone."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from server.storage.durability import fsync_path, write_atomic

STALE_SECONDS = 15 * 60  # a recorded key without its upload id: uploads of it older than this
MATCH_SECONDS = 60  # an upload created this long around a record's time is the record's


@dataclass(frozen=True, slots=True)
class Unfinished:
    """One upload this server started: where, and (once known) its upload id."""

    record: str  # the record's file name
    bucket: str
    key: str
    started_at: float  # UNIX time, written before the upload was created
    upload_id: str | None

    def matches(self, key: str, upload_id: str, initiated: datetime, now: float) -> bool:
        """Whether a pending upload the store lists is this one (see the module's docstring)."""
        if key != self.key:
            return False
        if self.upload_id is not None:
            return upload_id == self.upload_id
        at = initiated.timestamp()
        return abs(at - self.started_at) <= MATCH_SECONDS and now - at >= STALE_SECONDS


class UnfinishedUploads:
    """The records of one location's uploads, in their own folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._active: set[str] = set()  # records of uploads running in this process now
        self._lock = threading.Lock()

    def begin(self, bucket: str, key: str) -> str:
        """Record an upload about to be created; the record's name."""
        record = f"{uuid.uuid4().hex}.json"
        with self._lock:
            self._active.add(record)
        self._write(Unfinished(record, bucket, key, time.time(), None))
        return record

    def created(self, record: str, bucket: str, key: str, started_at: float, upload_id: str) -> None:
        """The store gave the upload its id."""
        self._write(Unfinished(record, bucket, key, started_at, upload_id))

    def read(self, record: str) -> Unfinished | None:
        try:
            data = json.loads((self.folder / record).read_text(encoding="utf-8"))
            return Unfinished(record, data["bucket"], data["key"], float(data["started_at"]), data["upload_id"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def end(self, record: str) -> None:
        """The upload completed or was aborted: nothing left to clean up."""
        with contextlib.suppress(FileNotFoundError):
            (self.folder / record).unlink()
            fsync_path(self.folder, os.O_RDONLY | os.O_DIRECTORY)
        with self._lock:
            self._active.discard(record)

    def release(self, record: str) -> None:
        """This process no longer runs the upload, which may still be pending at the store
        (its abort failed): the record stays for a later cleanup."""
        with self._lock:
            self._active.discard(record)

    def left_over(self) -> list[Unfinished]:
        """The records of uploads no running upload of this process owns (a crash cut them off)."""
        try:
            names = sorted(p.name for p in self.folder.iterdir() if p.name.endswith(".json"))
        except FileNotFoundError:
            return []
        with self._lock:
            names = [name for name in names if name not in self._active]
        found = [self.read(name) for name in names]
        for name, entry in zip(names, found, strict=True):
            if entry is None:  # unreadable (cut off while written): nothing can be matched with it
                with contextlib.suppress(FileNotFoundError):
                    (self.folder / name).unlink()
        return [entry for entry in found if entry is not None]

    def _write(self, entry: Unfinished) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        data = {"bucket": entry.bucket, "key": entry.key, "started_at": entry.started_at, "upload_id": entry.upload_id}
        write_atomic(self.folder / entry.record, json.dumps(data).encode())


def journal_folder(data_dir: Path, location: str) -> Path:
    """Where a location's records live in the data folder (the name hashed: any name fits)."""
    return data_dir / "unfinished-uploads" / hashlib.sha256(location.encode()).hexdigest()[:24]
