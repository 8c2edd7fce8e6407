"""Storing one captured item: read from its source, written to the content store.

Safe to run on several threads at once. A read error is told apart from a write error:
the first is the source's (SOURCE_UNAVAILABLE), the second the store's (STORAGE_FULL when the
disk is full, else STORAGE_FAILED).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO, Self

from server.model.errors import OperationErrorCode, OperationFailed
from server.sources.base import CapturedItem, ItemChanged, Source
from server.storage.blobs.content_store import CHUNK_SIZE, ContentStore, DigestMismatch, read_up_to
from server.storage.full import files_full

PROGRESS_BYTES = 32 * 1024 * 1024  # inside a big file, report progress this often
SMALL_ITEM = 1024 * 1024  # read whole into memory; a bigger one is streamed
ATTEMPTS = 3  # reads of an item that changes while it is read, before the capture fails
RETRY_PAUSE = 0.1  # seconds between them: a writer mid-write is often done by then


@dataclass(frozen=True, slots=True)
class Stored:
    digest: str
    size: int
    new: bool  # newly written to the store (else it held the blob already)
    item: CapturedItem  # the item as stored: another stat of it, if it changed while read


class _Changed(Exception):
    """The item was not as its snapshot said while it was read (size, content or file)."""

    def __init__(self, read: int | None) -> None:
        self.read = read  # bytes read, when the size is what differed


def store_one(
    store: ContentStore,
    source: Source,
    item: CapturedItem,
    report: Callable[[int], object],
    checkpoint: Callable[[], None],
) -> Stored:
    """Read one item into the store (which pins its blob); safe to run on several threads.

    An item that changes while it is read (a log being written) is read again from a new
    stat, up to ATTEMPTS times in all with RETRY_PAUSE between; if it never reads the same
    twice, the capture fails with SOURCE_CHANGED naming it. Nothing is stored for a read
    that did not match, so no blob of a half-written file is left behind."""
    assert item.open is not None
    attempt, expected, read = 1, item.size, None
    while True:
        try:
            stored = _store_once(store, source, item, _ByteProgress(report, checkpoint), checkpoint)
        except _Changed as changed:
            expected, read = item.size, changed.read
        else:
            if item.on_stored is not None:
                item.on_stored(stored.digest)
            return stored
        if item.refresh is None or attempt == ATTEMPTS:
            break
        attempt += 1
        checkpoint()
        time.sleep(RETRY_PAUSE)
        try:
            item = item.refresh()
        except OSError as error:
            raise _read_failure(source, item, error) from error
    what = f"{expected} bytes expected, {read} read" if read is not None else "its content or file changed"
    tries = f" on each of {attempt} reads" if attempt > 1 else ""
    raise OperationFailed(
        OperationErrorCode.SOURCE_CHANGED, f"{source.name}/{item.path} changed while it was read{tries} ({what})"
    )


def _store_once(
    store: ContentStore, source: Source, item: CapturedItem, progress: _ByteProgress, checkpoint: Callable[[], None]
) -> Stored:
    assert item.open is not None
    limit = item.size + 1  # one byte more tells a file that grew, and a growing one is not read forever
    try:
        with _SourceStream(item.open) as stream:
            if item.size <= SMALL_ITEM:
                # Read whole into a buffer of its own size: a 1 MiB read buffer per small
                # file cost more than storing the file.
                # One read asking for a byte more than the size: a regular file (or a buffer)
                # answering short is at its end, so a second read would only return nothing.
                data = stream.read(limit)
                if len(data) < item.size:
                    data += read_up_to(stream, limit - len(data))  # type: ignore[arg-type]
                if len(data) != item.size:
                    raise _Changed(len(data))
                progress(len(data))
                return Stored(*store.put_bytes(data), item)
            # A big one is hashed first, so content the store holds already (a file moved,
            # or not in the hash cache) costs no temporary copy, nor the disk space for one.
            digest, size = _hash(stream, limit, progress)
        if size != item.size:
            raise _Changed(size)
        if store.claim(digest, size):
            return Stored(digest, size, False, item)
        # New: read again, written while hashed, and stored only if it hashes the same.
        with _SourceStream(item.open) as stream:
            bounded = _Bounded(stream, limit)
            _, size, new = store.put_stream(bounded, on_bytes=_ByteProgress(lambda _n: None, checkpoint), expect=digest)  # type: ignore[arg-type]
        if size != item.size:  # the same bytes, so the same size; kept as a guard
            raise _Changed(size)
        return Stored(digest, size, new, item)
    except (ItemChanged, DigestMismatch):
        raise _Changed(None) from None
    except _SourceReadError as failed:
        raise _read_failure(source, item, failed.error) from failed.error
    except OSError as error:  # the store's side: disk full, permissions
        if (full := files_full(error, f"the content store ({store.root})")) is not None:
            raise full from error
        raise OperationFailed(
            OperationErrorCode.STORAGE_FAILED, f"could not store {source.name}/{item.path}: {error.strerror or error}"
        ) from error


def _hash(stream: _SourceStream, limit: int, progress: Callable[[int], None]) -> tuple[str, int]:
    """The SHA-256 and size of at most `limit` bytes of the stream, nothing written."""
    hasher = hashlib.sha256()
    size = 0
    while size < limit and (chunk := stream.read(min(CHUNK_SIZE, limit - size))):
        hasher.update(chunk)
        size += len(chunk)
        progress(len(chunk))
    return hasher.hexdigest(), size


def _read_failure(source: Source, item: CapturedItem, error: OSError) -> OperationFailed:
    return OperationFailed(
        OperationErrorCode.SOURCE_UNAVAILABLE,
        f"source {source.name!r}: could not read {item.path}: {error.strerror or error}",
    )


class _ByteProgress:
    """Reports progress inside one big item, and lets a cancel stop it mid-file."""

    def __init__(self, report: Callable[[int], object], checkpoint: Callable[[], None]) -> None:
        self._report = report
        self._checkpoint = checkpoint
        self._read = 0
        self._reported = 0

    def __call__(self, count: int) -> None:
        self._read += count
        if self._read - self._reported >= PROGRESS_BYTES:
            self._reported = self._read
            self._checkpoint()
            self._report(self._read)


class _SourceReadError(Exception):
    def __init__(self, error: OSError) -> None:
        self.error = error


class _SourceStream:
    """An item's stream whose read errors are told apart from the store's write errors."""

    def __init__(self, opener: Callable[[], BinaryIO]) -> None:
        try:
            self._stream = opener()
        except OSError as error:
            raise _SourceReadError(error) from error

    def read(self, size: int = -1) -> bytes:
        try:
            return self._stream.read(size)
        except OSError as error:
            raise _SourceReadError(error) from error

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stream.close()


class _Bounded:
    """At most `limit` bytes of a stream: a file growing while it is copied ends the copy."""

    def __init__(self, stream: _SourceStream, limit: int) -> None:
        self._stream = stream
        self._left = limit

    def read(self, size: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        data = self._stream.read(self._left if size < 0 else min(size, self._left))
        self._left -= len(data)
        return data
