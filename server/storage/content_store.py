"""A content-addressed blob store: each blob is a file named by its SHA-256, written once.

The methods here are blocking (file I/O and hashing); callers run them off the event loop.
Blobs are never rewritten in place: a new blob is written to a temporary file, flushed to
disk and renamed, so a reader sees either no blob or the whole of it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

CHUNK_SIZE = 1024 * 1024
_HEX = frozenset("0123456789abcdef")


def is_sha256(value: str) -> bool:
    """Whether `value` is a lowercase hex SHA-256 digest."""
    return len(value) == 64 and set(value) <= _HEX


class ContentStore:
    """Blobs under `root/ab/cdef...`, plus pins that keep in-flight blobs from being collected.

    A pin says "an unfinished operation relies on this blob"; garbage collection skips pinned
    blobs, so a blob that one operation is about to reference is never deleted under it.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._tmp = root / "tmp"
        self._tmp.mkdir(parents=True, exist_ok=True)
        self._pins: Counter[str] = Counter()
        self._lock = threading.Lock()

    def path_of(self, digest: str) -> Path:
        if not is_sha256(digest):
            raise ValueError(f"not a SHA-256 digest: {digest!r}")
        return self.root / digest[:2] / digest[2:]

    def has(self, digest: str) -> bool:
        return self.path_of(digest).is_file()

    def open(self, digest: str) -> BinaryIO:
        return self.path_of(digest).open("rb")

    def size(self, digest: str) -> int:
        return self.path_of(digest).stat().st_size

    def put_stream(
        self, stream: BinaryIO, *, on_bytes: Callable[[int], None] | None = None
    ) -> tuple[str, int, bool]:
        """Store a stream's bytes; returns (digest, size, newly_written) and pins the digest.

        A stream that fits in one chunk is hashed in memory first, so content the store
        already holds costs no temporary file; a longer one is written while it is hashed.
        """
        head = _read_up_to(stream, CHUNK_SIZE + 1)
        if len(head) <= CHUNK_SIZE:
            if on_bytes is not None and head:
                on_bytes(len(head))
            return self.put_bytes(head)
        fd, tmp_name = tempfile.mkstemp(dir=self._tmp, prefix="put-")
        tmp = Path(tmp_name)
        hasher = hashlib.sha256()
        size = 0
        try:
            with os.fdopen(fd, "wb") as out:
                chunk = head
                while chunk:
                    hasher.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
                    if on_bytes is not None:
                        on_bytes(len(chunk))
                    chunk = stream.read(CHUNK_SIZE)
                out.flush()
                os.fsync(out.fileno())
            digest = hasher.hexdigest()
            return digest, size, self._commit(tmp, digest)
        finally:
            tmp.unlink(missing_ok=True)

    def put_bytes(self, data: bytes) -> tuple[str, int, bool]:
        """Store `data`; returns (digest, size, newly_written) and pins the digest."""
        digest = hashlib.sha256(data).hexdigest()
        with self._lock:
            self._pins[digest] += 1
            if self.has(digest):
                return digest, len(data), False
        fd, tmp_name = tempfile.mkstemp(dir=self._tmp, prefix="put-")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            self._place(tmp, digest)
            return digest, len(data), True
        finally:
            tmp.unlink(missing_ok=True)

    def pin_existing(self, digest: str, size: int | None = None) -> bool:
        """Pin a blob the store already holds (with this size, if given), without reading it.

        Returns False when it is absent: the caller must then store the content itself.
        """
        with self._lock:
            try:
                held = self.path_of(digest).stat()
            except FileNotFoundError:
                return False
            if size is not None and held.st_size != size:
                return False
            self._pins[digest] += 1
            return True

    def _commit(self, tmp: Path, digest: str) -> bool:
        with self._lock:
            self._pins[digest] += 1
            if self.has(digest):
                return False
        self._place(tmp, digest)
        return True

    def _place(self, tmp: Path, digest: str) -> None:
        target = self.path_of(digest)
        target.parent.mkdir(exist_ok=True)
        os.replace(tmp, target)  # the same bytes under the same name: racing writers agree

    def pin(self, digests: Iterable[str]) -> None:
        with self._lock:
            self._pins.update(digests)

    def unpin(self, digests: Iterable[str]) -> None:
        with self._lock:
            self._pins.subtract(digests)
            for digest in [d for d, n in self._pins.items() if n <= 0]:
                del self._pins[digest]

    def collect(self, candidates: Iterable[str], is_referenced: Callable[[str], bool]) -> int:
        """Delete those candidates that nothing pins and `is_referenced` says are unused."""
        freed = 0
        with self._lock:
            for digest in set(candidates):
                if self._pins.get(digest) or is_referenced(digest):
                    continue
                path = self.path_of(digest)
                try:
                    freed += path.stat().st_size
                    path.unlink()
                except FileNotFoundError:
                    pass
        return freed

    def all_digests(self) -> Iterator[str]:
        for sub in self.root.iterdir():
            if len(sub.name) != 2 or not sub.is_dir():
                continue
            for blob in sub.iterdir():
                digest = sub.name + blob.name
                if is_sha256(digest):
                    yield digest

    def verify(self, digest: str) -> bool:
        """Whether the blob exists and its bytes still hash to its name."""
        try:
            with self.open(digest) as blob:
                hasher = hashlib.sha256()
                while chunk := blob.read(CHUNK_SIZE):
                    hasher.update(chunk)
        except FileNotFoundError:
            return False
        return hasher.hexdigest() == digest

    def clear_temporary(self) -> None:
        """Remove temp files left by a process that died mid-write."""
        shutil.rmtree(self._tmp, ignore_errors=True)
        self._tmp.mkdir(parents=True, exist_ok=True)


def _read_up_to(stream: BinaryIO, limit: int) -> bytes:
    """Up to `limit` bytes, fewer only at the end of the stream (raw reads may come short)."""
    parts: list[bytes] = []
    wanted = limit
    while wanted > 0:
        part = stream.read(wanted)
        if not part:
            break
        parts.append(part)
        wanted -= len(part)
    return b"".join(parts)
