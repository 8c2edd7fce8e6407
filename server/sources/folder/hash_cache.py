"""A hash cache: the SHA-256 of a file, remembered by what `stat` says about it.

A file whose device, inode, size, mtime and ctime are unchanged since it was last hashed is
assumed unchanged, so re-capturing an unchanged tree reads nothing. The trade-off: content
changed without any of these changing is missed. ctime cannot be set from user space, so
tools that restore mtimes (rsync -t, tar, cp -p) do not fool it; what can is a clock set
back, a filesystem with unreliable ctime (some network and FUSE filesystems), or raw block
writes. For those, a source sets `verify = "full"` and the cache is not used.

Kept in a small SQLite file in the data folder (stdlib sqlite3). It is only a hint: if the
file is damaged it is rebuilt, and if it cannot be used, everything is simply read again.
Its rows are also kept in memory once read: an apply asks for a folder's rows three times
(staging, the snapshot before, the read-back), and reading 25,000 rows cost a quarter of a
second each time. The copy is read again whenever another connection wrote the file
(SQLite's data_version), so it never answers for rows it has not seen.
All methods block; they are called from worker threads.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
FileKey = tuple[int, int, int, int, int]  # device, inode, size, mtime_ns, ctime_ns

# A file changed within this many seconds of being hashed may change again inside the
# same timestamp tick (coarse clocks, 2 s on FAT) without its stat changing: such files
# are not remembered, and get read again next time (the "racy git" problem).
RACY_NS = 2_000_000_000
PENDING_LIMIT = 512

SCHEMA = """CREATE TABLE IF NOT EXISTS file_digest (
    path TEXT PRIMARY KEY, device INTEGER, inode INTEGER, size INTEGER,
    mtime_ns INTEGER, ctime_ns INTEGER, sha256 TEXT NOT NULL)"""


def file_key(info: os.stat_result) -> FileKey:
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


class HashCache:
    def __init__(self, path: Path, *, racy_ns: int = RACY_NS) -> None:
        self.path = path
        self.racy_ns = racy_ns
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._broken = False
        # Digests to record, written in batches: a transaction per file cost more than the
        # file itself when a capture stores tens of thousands of small ones.
        self._pending: list[tuple[object, ...]] = []
        self._pending_lock = threading.Lock()
        # path -> (key, digest): every row of the file, as of `_version` (under `_lock`)
        self._rows: dict[str, tuple[FileKey, str]] | None = None
        self._version: int | None = None

    def known(self, root: str) -> dict[str, tuple[FileKey, str]]:
        """Every remembered file under the folder `root` (absolute): path -> (key, digest)."""
        self.flush()
        prefix = root.rstrip("/") + "/"
        return self._run(lambda db: self._rows_under(db, prefix)) or {}

    def _rows_under(self, db: sqlite3.Connection, prefix: str) -> dict[str, tuple[FileKey, str]]:
        """The in-memory rows under `prefix`, read again first if another connection changed
        the file since. Runs under `_lock`, as every change of the rows does."""
        version = db.execute("PRAGMA data_version").fetchone()[0]
        if self._rows is None or version != self._version:
            found = db.execute("SELECT path, device, inode, size, mtime_ns, ctime_ns, sha256 FROM file_digest")
            self._rows = {row[0]: (tuple(row[1:6]), row[6]) for row in found}
            self._version = version
        return {path: hint for path, hint in self._rows.items() if path.startswith(prefix)}

    def remember(self, path: str, key: FileKey, digest: str, *, hashed_at_ns: int) -> None:
        """Record a digest, unless the file changed too shortly before it was read."""
        if max(key[3], key[4]) < hashed_at_ns - self.racy_ns:
            self._add(path, key, digest)

    def remember_written(self, path: str, key: FileKey, digest: str, *, written_after_ns: int) -> None:
        """Record the digest of a file an apply wrote (hashing the bytes as it wrote them),
        then gave back an old mtime. Its ctime is new, so `remember` would refuse it; but
        any write after ours sets the mtime to the present, later than `written_after_ns`,
        so the key changes. A file whose own mtime is that recent is not recorded."""
        if key[3] < written_after_ns - self.racy_ns:
            self._add(path, key, digest)

    def remember_all_written(self, rows: Iterable[tuple[str, FileKey, str]], *, written_after_ns: int) -> None:
        """`remember_written` for many files (path, key, digest), written in one transaction."""
        limit = written_after_ns - self.racy_ns
        found = [(path, *key, digest) for path, key, digest in rows if key[3] < limit]
        with self._pending_lock:
            self._pending.extend(found)
        self.flush()

    def _add(self, path: str, key: FileKey, digest: str) -> None:
        with self._pending_lock:
            self._pending.append((path, *key, digest))
            full = len(self._pending) >= PENDING_LIMIT
        if full:
            self.flush()

    def flush(self) -> None:
        """Write the digests remembered so far (a hint: losing them only costs a re-read)."""
        with self._pending_lock:
            rows, self._pending = self._pending, []
        if rows:
            self._run(lambda db: self._insert(db, rows))

    def _insert(self, db: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
        db.executemany("INSERT OR REPLACE INTO file_digest VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        if self._rows is not None:
            for row in rows:
                self._rows[row[0]] = (tuple(row[1:6]), row[6])

    def forget(self, paths: Iterable[str]) -> None:
        """Drop files that are gone, so the cache does not grow forever."""
        self.flush()  # in order: a file remembered, then gone, ends up gone
        rows = [(path,) for path in paths]
        if rows:
            self._run(lambda db: self._delete(db, rows))

    def _delete(self, db: sqlite3.Connection, rows: list[tuple[str]]) -> None:
        db.executemany("DELETE FROM file_digest WHERE path = ?", rows)
        if self._rows is not None:
            for (path,) in rows:
                self._rows.pop(path, None)

    def _run(self, action: Callable[[sqlite3.Connection], T]) -> T | None:
        with self._lock:
            if self._broken:
                return None
            try:
                db = self._db or self._open()
                with db:  # a transaction per call
                    return action(db)
            except sqlite3.Error as error:
                log.warning("hash cache %s unusable (%s): files will be read in full", self.path, error)
                self._broken = True
                self._rows = None
                return None

    def _open(self) -> sqlite3.Connection:
        try:
            db = self._connect()
        except sqlite3.DatabaseError:
            # A damaged cache is worth nothing: start a new one.
            self.path.unlink(missing_ok=True)
            db = self._connect()
        self._db = db
        self._rows = None  # a new connection: read the rows again
        return db

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, check_same_thread=False, timeout=10)
        # A hint, not a record: losing the last writes in a crash only costs a re-read.
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=OFF")
        db.execute(SCHEMA)
        db.execute("SELECT count(*) FROM file_digest").fetchone()
        return db

    def close(self) -> None:
        self.flush()
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
            self._rows = None
