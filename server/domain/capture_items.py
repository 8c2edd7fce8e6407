"""Storing one snapshot item: read from its source, written to the content store.

Safe to run on several threads at once. A read error is told apart from a write error:
the first is the source's (SOURCE_UNAVAILABLE), the second the store's (STORAGE_FAILED).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO, Self

from server.domain.errors import OperationErrorCode, OperationFailed
from server.sources.base import SnapshotItem, Source
from server.storage.content_store import ContentStore, read_up_to

PROGRESS_BYTES = 32 * 1024 * 1024  # inside a big file, report progress this often
SMALL_ITEM = 1024 * 1024  # read whole into memory; a bigger one is streamed


@dataclass(frozen=True, slots=True)
class Stored:
    digest: str
    size: int
    new: bool  # newly written to the store (else it held the blob already)


def store_one(
    store: ContentStore,
    source: Source,
    item: SnapshotItem,
    report: Callable[[int], object],
    checkpoint: Callable[[], None],
) -> Stored:
    """Read one item into the store (which pins its blob); safe to run on several threads."""
    assert item.open is not None
    progress = _ByteProgress(report, checkpoint)
    try:
        with _SourceStream(item.open) as stream:
            if item.size <= SMALL_ITEM:
                # Read whole into a buffer of its own size (one byte more tells a file that
                # grew): a 1 MiB read buffer per small file cost more than storing the file.
                data = read_up_to(stream, item.size + 1)  # type: ignore[arg-type]
                progress(len(data))
                digest, size, new = store.put_bytes(data)
            else:
                digest, size, new = store.put_stream(stream, on_bytes=progress)  # type: ignore[arg-type]
    except _SourceReadError as failed:
        error = failed.error
        raise OperationFailed(
            OperationErrorCode.SOURCE_UNAVAILABLE,
            f"source {source.name!r}: could not read {item.path}: {error.strerror or error}",
        ) from error
    except OSError as error:  # the store's side: disk full, permissions
        raise OperationFailed(
            OperationErrorCode.STORAGE_FAILED, f"could not store {source.name}/{item.path}: {error.strerror or error}"
        ) from error
    if item.on_stored is not None and size == item.size:
        item.on_stored(digest)
    return Stored(digest, size, new)


def check_size(source: Source, item: SnapshotItem, stored: Stored) -> None:
    if stored.size != item.size:
        raise OperationFailed(
            OperationErrorCode.SOURCE_CHANGED,
            f"{source.name}/{item.path} changed while it was read "
            f"({item.size} bytes expected, {stored.size} read)",
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
