"""A content-addressed blob store: each blob is a file named by its SHA-256, written once.

The methods here are blocking (file I/O and hashing); callers run them off the event loop.
Blobs are never rewritten in place: a new blob is written to a temporary file and renamed,
so a reader sees either no blob or the whole of it. New blobs are made durable together by
`sync()` (one filesystem flush instead of one fsync per blob, which cost ~4 ms each), and
callers sync before any restore point may reference them. A crash before that sync can
leave a damaged blob only where no restore point refers to it, and start-up collection
removes every such blob.

With `packs`, blobs stored through put_bytes (at most CHUNK_SIZE) are appended to pack files
instead (server/storage/blobs/pack_set.py, format in packs.py): one write instead of a create, a write and a rename per
small file. Loose blobs stay valid beside them, so a data folder of an earlier release is
read as it is. A pack is sealed and flushed by `sync()`, before any restore point may
reference its blobs; a pack no database row refers to (a crash mid-write) is removed by the
start-up sweep.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import itertools
import os
import shutil
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from server.model.names import is_sha256
from server.storage.blobs.pack_set import PackSet
from server.storage.durability import flush_files, fsync_path, start_writeback, write_all

CHUNK_SIZE = 1024 * 1024
WRITEBACK_BYTES = 16 * 1024 * 1024  # a big blob's pages are sent to disk this often
_TEMP_PREFIX = ".put-"  # a temp file beside the blobs: never a digest, so never taken for one


class DigestMismatch(Exception):
    """put_stream read bytes that do not hash to the digest expected (the source changed)."""

    def __init__(self, size: int) -> None:
        super().__init__(f"{size} bytes read do not hash to the digest expected")
        self.size = size


class BlobDamaged(Exception):
    """A blob whose bytes no longer hash to its name (changed on disk since it was stored)."""

    def __init__(self, digest: str) -> None:
        super().__init__(f"blob {digest} does not match its SHA-256")
        self.digest = digest


class ContentStore:
    """Blobs under `root/ab/cdef...`, plus pins that keep in-flight blobs from being collected.

    A pin says "an unfinished operation relies on this blob"; garbage collection skips pinned
    blobs, so a blob that one operation is about to reference is never deleted under it.
    """

    def __init__(self, root: Path, *, packs: bool = False, pause_after_appends: int | None = None) -> None:
        self.root = root
        self.packing = packs
        self.packs = PackSet(root / "packs", create=packs, pause_after_appends=pause_after_appends)
        self._tmp = root / "tmp"
        self._tmp.mkdir(parents=True, exist_ok=True)
        self._tmp_name = str(self._tmp)
        self._root_name = str(root)
        self._temp_numbers = itertools.count()
        self._folders: set[str] = set()  # blob folders known to exist
        # Blob folders found missing: with packs, a new store has none, and a stat per new small
        # blob that could only fail cost more than appending it. Only a hint: a blob put in one
        # by hand since is taken for absent, and stored again (a pack), never lost.
        self._absent: set[str] = set()
        self._pins: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._unsynced: set[str] = set()  # written since the last sync()
        self._sync_lock = threading.Lock()

    def path_of(self, digest: str) -> Path:
        if not is_sha256(digest):
            raise ValueError(f"not a SHA-256 digest: {digest!r}")
        return self.root / digest[:2] / digest[2:]

    def has(self, digest: str) -> bool:
        return digest in self.packs.index or os.path.isfile(self._name_of(digest))

    def _name_of(self, digest: str) -> str:
        """path_of as a string: cheaper than a Path, for the per-blob hot paths."""
        if not is_sha256(digest):
            raise ValueError(f"not a SHA-256 digest: {digest!r}")
        return f"{self._root_name}/{digest[:2]}/{digest[2:]}"

    def open(self, digest: str) -> BinaryIO:
        if (packed := self.packs.read(digest)) is not None:
            return io.BytesIO(packed)  # a packed blob is small: read whole
        return self.path_of(digest).open("rb")

    def read(self, digest: str, limit: int) -> bytes:
        """Up to `limit` bytes of a blob, fewer only at its end: for small blobs, read whole."""
        if (packed := self.packs.read(digest, limit)) is not None:
            return packed
        # Plain descriptor calls: four system calls where a file object makes eight (fstat,
        # ioctl, lseek, one more read), and each one hands the GIL over, which the export's
        # threads contend for.
        fd = os.open(self._name_of(digest), os.O_RDONLY | os.O_CLOEXEC)
        try:
            parts: list[bytes] = []
            while limit > 0 and (part := os.read(fd, limit)):
                parts.append(part)
                limit -= len(part)
        finally:
            os.close(fd)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def size(self, digest: str) -> int:
        if (where := self.packs.index.get(digest)) is not None:
            return where.size
        return self.path_of(digest).stat().st_size

    def claim(self, digest: str, size: int) -> bool:
        """Pin `digest` and say True if the store holds that blob at this size; else False,
        and nothing stays pinned (for content hashed before it is stored)."""
        with self._lock:
            self._pins[digest] += 1
        # Pinned before the look-up, as in put_bytes: a blob found is not collected after it.
        if self.holds(digest, size):
            return True
        self.unpin([digest])
        return False

    def put_stream(
        self, stream: BinaryIO, *, on_bytes: Callable[[int], None] | None = None, expect: str | None = None
    ) -> tuple[str, int, bool]:
        """Store a stream's bytes; returns (digest, size, newly_written) and pins the digest.

        A stream that fits in one chunk is hashed in memory first, so content the store
        already holds costs no temporary file; a longer one is written while it is hashed.
        With `expect`, bytes that do not hash to it are not stored: DigestMismatch.
        """
        head = read_up_to(stream, CHUNK_SIZE + 1)
        if len(head) <= CHUNK_SIZE:
            if expect is not None and hashlib.sha256(head).hexdigest() != expect:
                raise DigestMismatch(len(head))
            if on_bytes is not None and head:
                on_bytes(len(head))
            return self.put_bytes(head)
        fd, tmp = self._new_temp()
        hasher = hashlib.sha256()
        size = started = 0
        try:
            try:
                chunk = head
                while chunk:
                    hasher.update(chunk)
                    write_all(fd, chunk)
                    size += len(chunk)
                    if size - started >= WRITEBACK_BYTES:
                        # Sent to disk while the rest is read: the flush before the restore
                        # point is recorded then has little of a big blob left to write.
                        start_writeback(fd, started, size - started)
                        started = size
                    if on_bytes is not None:
                        on_bytes(len(chunk))
                    chunk = stream.read(CHUNK_SIZE)
            finally:
                os.close(fd)
            digest = hasher.hexdigest()
            if expect is not None and digest != expect:
                raise DigestMismatch(size)  # the temp file goes below: nothing is stored
            return digest, size, self._commit(tmp, digest, size)
        except BaseException:
            _unlink_quietly(tmp)
            raise

    def put_bytes(self, data: bytes) -> tuple[str, int, bool]:
        """Store `data`; returns (digest, size, newly_written) and pins the digest."""
        digest = hashlib.sha256(data).hexdigest()
        with self._lock:
            self._pins[digest] += 1
        # Pinned first, so a blob found here is not collected after the look-up: the look-up
        # itself needs no lock (two readers' lookups used to wait for each other).
        # At its size, not merely present: a blob cut short (a disk error, a copy by hand) is
        # written again rather than trusted.
        if self.holds(digest, len(data)):
            return digest, len(data), False
        # The one empty blob stays loose (a pack's live bytes count blobs), and so does one whose
        # pack is gone or cut short: the index keeps its place, reads fall back to the loose file.
        if self.packing and data and digest not in self.packs.index:
            return digest, len(data), self.packs.append(digest, data)
        # The digest is known before writing, so the temp file goes in the blob's own folder:
        # a rename within one folder cost less than half of one from a shared temp folder
        # (24,000 small blobs on ext4: 2.0 s against 5.0 s, nearly all of it kernel time).
        folder = self._folder_of(digest)
        try:
            fd, tmp = self._new_temp(folder, prefix=_TEMP_PREFIX)
        except FileNotFoundError:  # its folder was removed behind our back: make it again
            os.makedirs(folder, exist_ok=True)
            fd, tmp = self._new_temp(folder, prefix=_TEMP_PREFIX)
        try:
            try:
                write_all(fd, data)  # os.write: a file object per small blob cost more system calls
            finally:
                os.close(fd)
            self._place(tmp, digest)
        except BaseException:
            _unlink_quietly(tmp)
            raise
        return digest, len(data), True

    def _folder_of(self, digest: str) -> str:
        folder = f"{self._root_name}/{digest[:2]}"
        if digest[:2] not in self._folders:
            self._absent.discard(digest[:2])
            os.makedirs(folder, exist_ok=True)
            self._folders.add(digest[:2])
        return folder

    def _new_temp(self, folder: str | None = None, prefix: str = "put-") -> tuple[int, str]:
        # A counter, not mkstemp's random names: one open() per blob instead of retries
        # over a shared folder, which mattered at tens of thousands of small files.
        name = os.path.join(folder or self._tmp_name, f"{prefix}{os.getpid()}-{next(self._temp_numbers)}")
        return os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600), name

    def holds(self, digest: str, size: int) -> bool:
        """Whether the store holds this blob at this size (a stat, nothing read)."""
        if (where := self.packs.index.get(digest)) is not None and self.packs.intact(where):
            return where.size == size
        name = self._name_of(digest)
        if digest[:2] in self._absent:
            return False
        try:
            return os.stat(name).st_size == size
        except FileNotFoundError:
            if digest[:2] not in self._folders and not os.path.isdir(name[: -len(digest) + 1]):
                self._absent.add(digest[:2])
            return False

    def _commit(self, tmp: str, digest: str, size: int) -> bool:
        with self._lock:
            self._pins[digest] += 1
            if self.holds(digest, size):
                _unlink_quietly(tmp)
                return False
        self._place(tmp, digest)
        return True

    def _place(self, tmp: str, digest: str) -> None:
        target = self._name_of(digest)
        self._folder_of(digest)
        try:
            os.replace(tmp, target)  # the same bytes under the same name: racing writers agree
        except FileNotFoundError:  # its folder was removed behind our back: make it again
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.replace(tmp, target)
        with self._lock:
            self._unsynced.add(digest)

    def put_back(self, digest: str, chunks: Iterable[bytes]) -> str:
        """Write a blob again (a repair) into a temporary file beside where its loose file goes,
        hashed as it is written and flushed: DigestMismatch (nothing kept) unless the bytes hash
        to `digest`. Returns the temporary file, for `place_back` (or `drop_put_back`); a crash
        before that leaves it to clear_temporary."""
        folder = self._folder_of(digest)
        fd, tmp = self._new_temp(folder, prefix=_TEMP_PREFIX)
        hasher = hashlib.sha256()
        size = 0
        try:
            try:
                for chunk in chunks:
                    hasher.update(chunk)
                    write_all(fd, chunk)
                    size += len(chunk)
                if hasher.hexdigest() != digest:
                    raise DigestMismatch(size)
                os.fsync(fd)
            finally:
                os.close(fd)
        except BaseException:
            _unlink_quietly(tmp)
            raise
        return tmp

    def place_back(self, tmp: str, digest: str) -> None:
        """Rename a blob `put_back` wrote over whatever its loose file is, and flush its folder:
        the loose file is the old one or the new one whole, never a mix. A packed copy of it is
        then the caller's to drop from the index (its row first)."""
        target = self._name_of(digest)
        try:
            os.replace(tmp, target)
        except BaseException:
            _unlink_quietly(tmp)
            raise
        fsync_path(Path(target).parent, os.O_RDONLY | os.O_DIRECTORY)

    def drop_put_back(self, tmp: str) -> None:
        """Remove a blob `put_back` wrote that will not be placed (its operation stopped)."""
        _unlink_quietly(tmp)

    def unsynced(self) -> set[str]:
        """Blobs written since the last sync: not yet safe to refer to."""
        packed = self.packs.unflushed()
        with self._lock:
            return set(self._unsynced) | set(packed)

    def sync(self) -> None:
        """Make every blob written so far durable; call before a restore point refers to them.

        Holding the sync lock throughout means a caller never returns while another
        caller's flush, which may cover its blobs, is still under way.
        """
        with self._sync_lock:
            with self._lock:
                pending, self._unsynced = self._unsynced, set()
            packs = self.packs.seal()
            if not pending and not packs:
                return
            try:
                files = [self.path_of(digest) for digest in pending] + self.packs.paths(packs)
                flush_files(self.root, files, [self.packs.folder] if packs else [])
            except BaseException:
                with self._lock:
                    self._unsynced |= pending
                self.packs.not_flushed(packs)
                raise
            self.packs.flushed(packs)

    def pin(self, digests: Iterable[str]) -> None:
        with self._lock:
            self._pins.update(digests)

    def unpin(self, digests: Iterable[str]) -> None:
        with self._lock:
            self._pins.subtract(digests)
            for digest in [d for d, n in self._pins.items() if n <= 0]:
                del self._pins[digest]

    def collect(
        self,
        candidates: Iterable[str],
        is_referenced: Callable[[str], bool],
        unpacked: list[str] | None = None,
    ) -> int:
        """Delete those candidates that nothing pins and `is_referenced` says are unused.

        A packed one leaves the index (its bytes stay in the pack until a rewrite); its digest
        is appended to `unpacked`, for the caller to delete its database row."""
        freed = 0
        with self._lock:
            for digest in set(candidates):
                if self._pins.get(digest) or is_referenced(digest):
                    continue
                dropped = self.packs.drop(digest)
                if dropped is not None:
                    freed += dropped.size
                    if unpacked is not None:
                        unpacked.append(digest)
                path = self.path_of(digest)
                try:
                    freed += path.stat().st_size
                    path.unlink()
                except FileNotFoundError:
                    pass
        return freed

    def all_digests(self) -> Iterator[str]:
        """Every blob held: packed, then loose."""
        yield from self.packs.index.digests()
        for sub in self.root.iterdir():
            if len(sub.name) != 2 or not sub.is_dir():
                continue
            for blob in sub.iterdir():
                digest = sub.name + blob.name
                if is_sha256(digest):
                    yield digest

    def usage(self) -> tuple[int, int]:
        """(blob count, bytes) of the blobs on disk now (pack files whole); blocking, for a thread."""
        count, total = len(self.packs.index), self.packs.bytes_on_disk()
        for sub in os.scandir(self.root):
            if len(sub.name) != 2 or not sub.is_dir(follow_symlinks=False):
                continue
            with os.scandir(sub.path) as blobs:
                for blob in blobs:
                    if is_sha256(sub.name + blob.name):
                        with contextlib.suppress(FileNotFoundError):  # collected meanwhile
                            total += blob.stat(follow_symlinks=False).st_size
                            count += 1
        return count, total

    def verify(self, digest: str) -> bool:
        """Whether the blob exists and its bytes still hash to its name."""
        try:
            if (where := self.packs.index.get(digest)) is not None:
                packed = self.packs.read(digest)
                return packed is not None and len(packed) == where.size and hashlib.sha256(packed).hexdigest() == digest
            with self.open(digest) as blob:
                hasher = hashlib.sha256()
                while chunk := blob.read(CHUNK_SIZE):
                    hasher.update(chunk)
        except FileNotFoundError:
            return False
        return hasher.hexdigest() == digest

    def open_checked(self, digest: str) -> BinaryIO:
        """The blob at its start, its whole content read and checked first: BlobDamaged if it no
        longer hashes to its name, FileNotFoundError if missing. For a reader that must not hand
        out one wrong byte. A loose blob is checked and returned through the same open file, so
        what is read next is what was checked (blobs are only ever replaced whole, by rename)."""
        if (packed := self.packs.read(digest)) is not None:
            if hashlib.sha256(packed).hexdigest() != digest:
                raise BlobDamaged(digest)
            return io.BytesIO(packed)
        blob = self.path_of(digest).open("rb")
        try:
            hasher = hashlib.sha256()
            while chunk := blob.read(CHUNK_SIZE):
                hasher.update(chunk)
            if hasher.hexdigest() != digest:
                raise BlobDamaged(digest)
            blob.seek(0)
        except BaseException:
            blob.close()
            raise
        return blob

    def read_checked(self, digest: str) -> Iterator[bytes]:
        """The blob in pieces of CHUNK_SIZE, hashed on the way, in one pass. The last piece is
        held back until the hash is known: a damaged blob raises BlobDamaged before its end is
        given out (and a blob of one piece gives out nothing wrong at all)."""
        hasher = hashlib.sha256()
        with self.open(digest) as blob:
            pending = read_up_to(blob, CHUNK_SIZE)
            while True:
                following = read_up_to(blob, CHUNK_SIZE) if pending else b""
                hasher.update(pending)
                if not following and hasher.hexdigest() != digest:
                    raise BlobDamaged(digest)
                if pending:
                    yield pending
                if not following:
                    return
                pending = following

    def clear_temporary(self) -> int:
        """Remove temp files left by a process that died mid-write (in the temp folder, and
        beside the blobs: a small blob's temp file is written in its own folder); how many."""
        with os.scandir(self._tmp_name) as entries:
            removed = sum(1 for _ in entries)
        shutil.rmtree(self._tmp, ignore_errors=True)
        self._tmp.mkdir(parents=True, exist_ok=True)
        for sub in os.scandir(self._root_name):
            if len(sub.name) != 2 or not sub.is_dir(follow_symlinks=False):
                continue
            with os.scandir(sub.path) as entries:
                stale = [entry.path for entry in entries if entry.name.startswith(_TEMP_PREFIX)]
            for path in stale:
                _unlink_quietly(path)
            removed += len(stale)
        return removed


def read_up_to(stream: BinaryIO, limit: int) -> bytes:
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


def _unlink_quietly(name: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(name)
