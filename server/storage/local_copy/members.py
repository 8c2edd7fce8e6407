"""Small members of a local copy, made ready ahead of the writer by worker threads: each is
read whole, checked against its entry, checksummed (CRC-32) and deflated if that pays.

Members go to the workers in batches, one task for several of them: each task and each
result is a hand-off between threads, and at 24,000 members of ~11 KB the hand-offs (and
the GIL they wait for) cost more than the work they carry.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

from server.model.records import EntryKind, ManifestEntry
from server.storage.local_copy.manifest import ArchiveLimits, ContentMismatch, member_name
from server.storage.local_copy.parallel_deflate import CHUNK_SIZE, compress_chunk, crc32
from server.storage.local_copy.zip_writer import DEFLATED, STORED

WORTH_COMPRESSING = 0.9  # deflate must save at least 10% (of a member, or its first chunk)
RATIO_MARGIN = 0.9  # keep clear of the reader's ratio limit
_BATCH_MEMBERS = 32  # small members prepared by one task
_BATCH_BYTES = 256 * 1024
# Content read ahead of the writer (its payloads, mostly deflated, wait in memory): enough to
# keep both cores busy while the writer encodes and checks a manifest of 24,000 entries.
_AHEAD_BYTES = 32 * 1024 * 1024
_AHEAD_MEMBERS = 4096

ReadBlob = Callable[[str, int], bytes]  # (digest, limit): up to `limit` bytes, fewer only at the end


@dataclass(frozen=True, slots=True)
class Prepared:
    """A small member read, checked and (if it pays) deflated by a worker thread."""

    payload: bytes  # what goes in the ZIP: the deflate data, or the content itself
    method: int
    crc: int  # CRC-32 of the content


def prepare_batch(entries: list[ManifestEntry], read_blob: ReadBlob, limits: ArchiveLimits) -> list[Prepared]:
    """Read, check and deflate these small members (one worker task)."""
    return [prepare_small(entry, read_blob, limits) for entry in entries]


def prepare_small(entry: ManifestEntry, read_blob: ReadBlob, limits: ArchiveLimits) -> Prepared:
    """One small member, read whole; ContentMismatch if its bytes differ from its entry."""
    assert entry.sha256 is not None  # checked by entry_problem
    raw = read_blob(entry.sha256, entry.size + 1)
    check_content(entry, len(raw), hashlib.sha256(raw).hexdigest())
    crc = crc32(raw)
    if not raw:
        return Prepared(raw, STORED, crc)
    packed = compress_chunk(raw, last=True)
    # Already-compressed content (media, archives) gains nothing from a second pass.
    if len(packed) > len(raw) * WORTH_COMPRESSING or too_dense(len(raw), len(packed), limits):
        return Prepared(raw, STORED, crc)
    return Prepared(packed, DEFLATED, crc)


def too_dense(size: int, packed: int, limits: ArchiveLimits) -> bool:
    """Whether import would refuse this member as a zip bomb (beyond the ratio limit)."""
    return size > limits.ratio_floor and size > packed * limits.max_ratio * RATIO_MARGIN


def check_content(entry: ManifestEntry, size: int, digest: str) -> None:
    """ContentMismatch unless `size` and `digest` are the entry's."""
    if size > entry.size:
        detail = f"more than the {entry.size} bytes expected"
    elif size != entry.size:
        detail = f"{size} bytes, {entry.size} expected"
    elif digest != entry.sha256:
        detail = "other bytes of the same size"
    else:
        return
    raise ContentMismatch(f"blob {entry.sha256} for {member_name(entry)!r} does not match its entry: {detail}")


class Lookahead:
    """Starts preparing the next small members while the writer handles this one, in batches,
    keeping about _AHEAD_BYTES of them in flight."""

    def __init__(
        self, entries: list[ManifestEntry], start: Callable[[list[ManifestEntry]], Future[list[Prepared]]]
    ) -> None:
        self._entries = entries
        self._start = start
        self._started: dict[int, tuple[Future[list[Prepared]], int]] = {}  # index: (its batch, place in it)
        self._next = 0
        self._in_flight = 0  # bytes of the members started and not yet taken

    def start(self) -> None:
        """Start the first members, before the writer asks for any."""
        self._fill(0)

    def take(self, index: int) -> Prepared:
        """The prepared member at `index` (a small file), waiting for it if need be."""
        self._fill(index)
        batch, place = self._started.pop(index)
        self._in_flight -= self._entries[index].size
        return batch.result()[place]

    def _fill(self, index: int) -> None:
        self._next = max(self._next, index)
        while self._next < len(self._entries) and (
            index not in self._started or (self._in_flight < _AHEAD_BYTES and len(self._started) < _AHEAD_MEMBERS)
        ):
            batch = self._batch()
            if batch:
                future = self._start([self._entries[i] for i in batch])
                self._started.update((i, (future, place)) for place, i in enumerate(batch))

    def _batch(self) -> list[int]:
        batch: list[int] = []
        size = 0
        while self._next < len(self._entries) and len(batch) < _BATCH_MEMBERS and size < _BATCH_BYTES:
            entry = self._entries[self._next]
            self._next += 1
            if entry.kind is not EntryKind.DIRECTORY and entry.size <= CHUNK_SIZE:
                batch.append(self._next - 1)
                size += entry.size
        self._in_flight += size
        return batch
