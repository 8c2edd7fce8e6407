"""Writing a local copy: a ZIP built in a hidden temporary file, then renamed into place.

A reader of the folder sees either no copy or a whole one: the ZIP is written to
`.<name>.<random>.partial` beside the target, flushed to disk, renamed over the target, and
the folder itself is flushed so the rename survives a crash.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
import zipfile
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from server.domain.models import EntryKind, ManifestEntry, RestorePoint
from server.storage.durability import fsync_path
from server.storage.local_copy_manifest import (
    MANIFEST_NAME,
    ArchiveLimits,
    ContentMismatch,
    CopyCancelled,
    encode_manifest,
    entries_problem,
    entry_problem,
    limits_problem,
    member_name,
)
from server.storage.parallel_deflate import (
    CHUNK_SIZE,
    WORKERS,
    ChunkSink,
    Precompressed,
    compress_chunk,
    next_window,
    read_up_to,
)

_WORTH_COMPRESSING = 0.9  # deflate must save at least 10% (of a member, or its first chunk)
_RATIO_MARGIN = 0.9  # keep clear of the reader's ratio limit
_MSDOS_DIRECTORY = 0x10
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_ZIP_END_OF_TIME = (2107, 12, 31, 23, 59, 58)

OpenBlob = Callable[[str], BinaryIO]
Progress = Callable[[int], None]
ShouldStop = Callable[[], bool]


def write_local_copy(
    target: Path,
    *,
    restore_point: RestorePoint,
    entries: Sequence[ManifestEntry],
    open_blob: OpenBlob,
    on_bytes: Progress | None = None,
    should_stop: ShouldStop | None = None,
    limits: ArchiveLimits = ArchiveLimits(),
) -> int:
    """Atomically write a local copy to `target`; returns its size in bytes.

    Raises ValueError (before touching the folder) if the entries break the format's rules or
    `limits`, CopyCancelled if `should_stop()` turns true, ContentMismatch if a blob's bytes
    differ from its entry. On any failure the target is untouched and no temp file remains.
    """
    entries = list(entries)
    manifest = encode_manifest(restore_point, entries)
    _check_writable(entries, manifest, limits)
    # A leading dot hides the partial file from folder listings.
    fd, temp_name = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=".partial"
    )
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            writer = _Writer(out, open_blob, on_bytes, should_stop, limits)
            writer.write(manifest, entries, restore_point.created_at)
            out.flush()
            os.fsync(out.fileno())
            size = os.fstat(out.fileno()).st_size
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    fsync_path(target.parent)
    return size


def _check_writable(entries: list[ManifestEntry], manifest: bytes, limits: ArchiveLimits) -> None:
    # Refuse to write what import would refuse: a copy nobody can restore is worse than none.
    problem = next(
        (f"entry {member_name(e)!r} {p}" for e in entries if (p := entry_problem(e))), None
    ) or entries_problem(entries) or limits_problem(entries, limits)
    if problem is None and len(manifest) > limits.max_manifest_bytes:
        problem = (
            f"has a manifest of {len(manifest)} bytes, more than {limits.max_manifest_bytes}"
        )
    if problem:
        raise ValueError(f"cannot write a local copy: the restore point {problem}")


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A small member read, checked and (if it pays) deflated by a worker thread."""

    raw: bytes
    packed: bytes | None  # None: store it as it is


class _Writer:
    """Writes the members of one copy, reporting progress and honouring cancellation.

    Deflating is the costly part, so it runs on every core: small members are read, checked
    and compressed whole by worker threads a little ahead of the writer; a large one is cut
    into chunks that are compressed at once (parallel_deflate). The writer keeps the order,
    checks every byte against the entry's size and SHA-256, and writes through zipfile.
    """

    def __init__(
        self,
        out: BinaryIO,
        open_blob: OpenBlob,
        on_bytes: Progress | None,
        should_stop: ShouldStop | None,
        limits: ArchiveLimits,
    ) -> None:
        self._out = out
        self._open_blob = open_blob
        self._on_bytes = on_bytes
        self._should_stop = should_stop
        self._limits = limits
        self._max_ratio = limits.max_ratio * _RATIO_MARGIN

    def write(self, manifest: bytes, entries: list[ManifestEntry], created_at: datetime) -> None:
        """Write manifest.json first, then one member per entry in manifest order."""
        pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="zip-deflate")
        try:
            with zipfile.ZipFile(self._out, "w", allowZip64=True) as archive:
                info = zipfile.ZipInfo(MANIFEST_NAME, _zip_time(created_at))
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = (stat.S_IFREG | 0o644) << 16
                archive.writestr(info, manifest)
                ahead = _Lookahead(entries, lambda e: pool.submit(self._prepare_small, e))
                for index, entry in enumerate(entries):
                    self._stop_if_asked()
                    if entry.kind is EntryKind.DIRECTORY:
                        archive.writestr(_member_info(entry, created_at, zipfile.ZIP_STORED), b"")
                    elif entry.size <= CHUNK_SIZE:
                        self._write_prepared(archive, entry, created_at, ahead.take(index))
                    else:
                        self._write_large(archive, entry, created_at, pool)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    # -- small members: whole, in a worker ---------------------------------------------------

    def _prepare_small(self, entry: ManifestEntry) -> _Prepared:
        assert entry.sha256 is not None  # checked by entry_problem
        with self._open_blob(entry.sha256) as blob:
            raw = read_up_to(blob, entry.size + 1)
        _check_content(entry, len(raw), hashlib.sha256(raw).hexdigest())
        if not raw:
            return _Prepared(raw, None)
        packed = compress_chunk(raw, last=True)
        # Already-compressed content (media, archives) gains nothing from a second pass.
        if len(packed) > len(raw) * _WORTH_COMPRESSING or self._too_dense(len(raw), len(packed)):
            return _Prepared(raw, None)
        return _Prepared(raw, packed)

    def _write_prepared(
        self, archive: zipfile.ZipFile, entry: ManifestEntry, created_at: datetime, ready: Future[_Prepared]
    ) -> None:
        prepared = ready.result()
        method = zipfile.ZIP_STORED if prepared.packed is None else zipfile.ZIP_DEFLATED
        with archive.open(_member_info(entry, created_at, method), "w") as member:
            if prepared.packed is not None:
                member._compressor = Precompressed()  # type: ignore[attr-defined]
                member._compressor.pending = prepared.packed  # type: ignore[attr-defined]
            member.write(prepared.raw)
        self._progress(len(prepared.raw))

    # -- large members: streamed, chunks deflated at once ------------------------------------

    def _write_large(
        self, archive: zipfile.ZipFile, entry: ManifestEntry, created_at: datetime, pool: ThreadPoolExecutor
    ) -> None:
        assert entry.sha256 is not None
        hasher = hashlib.sha256()
        with self._open_blob(entry.sha256) as blob:
            first = read_up_to(blob, CHUNK_SIZE)
            probe = compress_chunk(first, last=len(first) >= entry.size)
            # The first chunk decides: incompressible content is stored without more work.
            deflate = len(probe) <= len(first) * _WORTH_COMPRESSING
            method = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
            with archive.open(_member_info(entry, created_at, method), "w") as member:
                sink = ChunkSink(member, hasher, self._max_ratio if entry.size > self._limits.ratio_floor else None)
                if deflate:
                    member._compressor = sink.compressor  # type: ignore[attr-defined]
                sink.put(first, probe if deflate else None, last=len(first) >= entry.size)
                self._progress(len(first))
                window, read = next_window(b"", first), len(first)
                in_flight: deque[tuple[bytes, Future[bytes] | None, bool]] = deque()
                while read < entry.size:
                    self._stop_if_asked()
                    raw = read_up_to(blob, min(CHUNK_SIZE, entry.size - read))
                    if not raw:
                        break
                    read += len(raw)
                    last = read >= entry.size
                    job = pool.submit(compress_chunk, raw, window=window, last=last) if deflate else None
                    window = next_window(window, raw)
                    in_flight.append((raw, job, last))
                    while in_flight and (len(in_flight) > 2 * WORKERS or in_flight[0][1] is None):
                        self._drain_one(sink, in_flight)
                while in_flight:
                    self._drain_one(sink, in_flight)
            extra = blob.read(1)
        _check_content(entry, read + len(extra), hasher.hexdigest())

    def _drain_one(self, sink: ChunkSink, in_flight: deque[tuple[bytes, Future[bytes] | None, bool]]) -> None:
        raw, job, last = in_flight.popleft()
        sink.put(raw, job.result() if job is not None else None, last=last)
        self._progress(len(raw))

    # -- shared ------------------------------------------------------------------------------

    def _too_dense(self, size: int, packed: int) -> bool:
        """Whether import would refuse this member as a zip bomb (beyond the ratio limit)."""
        return size > self._limits.ratio_floor and size > packed * self._max_ratio

    def _progress(self, count: int) -> None:
        if self._on_bytes is not None:
            self._on_bytes(count)
        self._stop_if_asked()

    def _stop_if_asked(self) -> None:
        if self._should_stop is not None and self._should_stop():
            raise CopyCancelled("writing the local copy was cancelled")


class _Lookahead:
    """Starts preparing the next small members while the writer handles this one, keeping
    about CHUNK_SIZE * 2 * WORKERS bytes of them in flight."""

    def __init__(self, entries: list[ManifestEntry], start: Callable[[ManifestEntry], Future[_Prepared]]) -> None:
        self._entries = entries
        self._start = start
        self._started: dict[int, Future[_Prepared]] = {}
        self._next = 0
        self._budget = CHUNK_SIZE * 2 * WORKERS

    def take(self, index: int) -> Future[_Prepared]:
        self._fill(index)
        return self._started.pop(index)

    def _fill(self, index: int) -> None:
        self._next = max(self._next, index)
        in_flight = sum(self._entries[i].size for i in self._started)
        while self._next < len(self._entries) and (index not in self._started or in_flight < self._budget):
            entry = self._entries[self._next]
            if entry.kind is not EntryKind.DIRECTORY and entry.size <= CHUNK_SIZE:
                self._started[self._next] = self._start(entry)
                in_flight += entry.size
            self._next += 1
            if index in self._started and len(self._started) >= 64 * WORKERS:
                break


def _check_content(entry: ManifestEntry, size: int, digest: str) -> None:
    if size > entry.size:
        detail = f"more than the {entry.size} bytes expected"
    elif size != entry.size:
        detail = f"{size} bytes, {entry.size} expected"
    elif digest != entry.sha256:
        detail = "other bytes of the same size"
    else:
        return
    raise ContentMismatch(
        f"blob {entry.sha256} for {member_name(entry)!r} does not match its entry: {detail}"
    )


def _member_info(entry: ManifestEntry, created_at: datetime, compress_type: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(member_name(entry), _zip_time(entry.mtime or created_at))
    info.compress_type = compress_type
    permissions = entry.mode & 0o777
    if entry.kind is EntryKind.DIRECTORY:
        info.external_attr = ((stat.S_IFDIR | permissions) << 16) | _MSDOS_DIRECTORY
    elif entry.kind is EntryKind.SYMLINK:
        # The link target as a plain text file: unzip must never create a link from a copy.
        info.external_attr = (stat.S_IFREG | 0o644) << 16
    else:
        info.external_attr = (stat.S_IFREG | permissions) << 16
    # zipfile picks ZIP64 local headers from the expected size, before any byte is written.
    info.file_size = entry.size
    return info


def _zip_time(when: datetime) -> tuple[int, int, int, int, int, int]:
    """ZIP's local-time stamp, taken in UTC and clamped to the years ZIP can represent."""
    if when.tzinfo is not None:
        when = when.astimezone(UTC)
    stamp = (when.year, when.month, when.day, when.hour, when.minute, when.second)
    return max(_ZIP_EPOCH, min(stamp, _ZIP_END_OF_TIME))
