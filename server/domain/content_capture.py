"""Store a snapshot's items in the content store: off the event loop, in short batches.

Items whose source vouches for a digest (the hash cache, for an unchanged file) are pinned
without being read; the rest are streamed in constant memory. Whether the store still holds
a vouched-for blob is checked once every item is through, and only if no stored manifest
equals the new one: a stored manifest keeps its blobs from collection, so re-capturing an
unchanged source costs no look-up per blob. Every digest is appended to `pinned` the moment
it is pinned, so the caller can release and collect them if the capture stops early.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import BinaryIO, Self

from server.domain.errors import OperationFailed
from server.domain.manifests import manifest_digests
from server.domain.models import EntryKind, ManifestEntry
from server.operations.live import OperationContext
from server.sources.base import SnapshotItem, Source
from server.storage.content_store import ContentStore, read_up_to

BATCH_SECONDS = 0.05  # a worker-thread batch ends after this long (or after one big item)
PROGRESS_BYTES = 32 * 1024 * 1024  # inside a big file, report progress this often
SMALL_ITEM = 1024 * 1024  # read whole and stored by a reader thread
READERS = 2
MAX_READING = 512  # small items in flight per batch: keeps a batch, and a cancel, short
_READERS: ThreadPoolExecutor | None = None
_LARGE: ThreadPoolExecutor | None = None  # one thread for big items, beside the readers


@dataclass
class CaptureTally:
    entries: list[ManifestEntry] = field(default_factory=list)
    stored_bytes: int = 0  # bytes newly written to the store
    reused: int = 0  # items pinned through their digest hint, never read
    checksum: str = ""  # the manifest's digests: see server/domain/manifests.py
    manifest_id: str = ""
    # Entries reused on a hint whose blob the store was not asked about yet, with their items.
    unchecked: list[tuple[int, Source, SnapshotItem]] = field(default_factory=list)


async def store_snapshots(
    ctx: OperationContext,
    store: ContentStore,
    snapshots: Sequence[tuple[Source, Sequence[SnapshotItem]]],
    pinned: list[str],
    *,
    manifest_held: Callable[[str], Awaitable[bool]] | None = None,
) -> CaptureTally:
    """Put every item's content in the store; returns the manifest entries and counts.

    `manifest_held(id)` says whether a manifest is stored, with its blobs kept from
    collection; without it every reused blob is looked up in the store.
    """
    total = sum(item.size for _, items in snapshots for item in items) or 1
    count = sum(len(items) for _, items in snapshots)
    ctx.progress(0.02, "Storing content")
    ctx.log(f"Storing {count} items, {total} bytes.")
    loop = asyncio.get_running_loop()
    tally = CaptureTally()
    done = 0
    for source, items in snapshots:
        position = 0
        while position < len(items):

            def report(read: int, base: int = done) -> None:
                ctx.progress(0.02 + 0.95 * min(1.0, (base + read) / total))

            batch = await asyncio.to_thread(
                _store_batch,
                store,
                source,
                items,
                position,
                pinned,
                tally,
                lambda read: loop.call_soon_threadsafe(report, read),
                ctx.checkpoint,
            )
            per_item = ctx.pauses_per_item
            for item, digest in batch:
                tally.entries.append(manifest_entry(source, item, digest))
                done += item.size
                if per_item:
                    ctx.progress(0.02 + 0.95 * done / total)
                    await ctx.pace()
            if not per_item:
                # Once per batch: per item, this cost more than reusing an unchanged file.
                ctx.progress(0.02 + 0.95 * done / total)
                await ctx.pace()
            position += len(batch)
    tally.checksum, tally.manifest_id = await asyncio.to_thread(manifest_digests, tally.entries)
    if tally.unchecked:
        if manifest_held is not None and await manifest_held(tally.manifest_id):
            ctx.log("The same manifest is stored already, and with it every blob it refers to.")
        else:
            await asyncio.to_thread(_check_reused, store, pinned, tally, ctx.checkpoint)
        tally.unchecked.clear()
    if tally.reused:
        ctx.log(f"{tally.reused} unchanged items reused without being read again.")
    return tally


def manifest_entry(source: Source, item: SnapshotItem, digest: str | None) -> ManifestEntry:
    """The manifest entry of one snapshot item whose content has this digest."""
    return ManifestEntry(
        source=source.name,
        path=item.path,
        kind=item.kind,
        size=item.size if item.kind is not EntryKind.DIRECTORY else 0,
        sha256=digest,
        mode=item.mode,
        mtime=item.mtime,
    )


def _store_batch(
    store: ContentStore,
    source: Source,
    items: Sequence[SnapshotItem],
    position: int,
    pinned: list[str],
    tally: CaptureTally,
    report: Callable[[int], object],
    checkpoint: Callable[[], None],
) -> list[tuple[SnapshotItem, str | None]]:
    """Store items from `position` until the batch's time is up (at least one); blocking."""
    started = time.monotonic()
    batch: list[tuple[SnapshotItem, str | None]] = []
    first_entry = len(tally.entries)  # the batch's entries are appended after it, in order
    reused: list[str] = []
    reading: list[tuple[int, Future[Stored]]] = []  # items being stored by the other threads
    large: Future[Stored] | None = None  # the batch's latest big item
    waited = 0  # reading[:waited] are done, but for big items
    try:
        for index in range(position, len(items)):
            item = items[index]
            checkpoint()  # a cancel stops between items, not after the batch
            if item.open is not None and item.digest is not None:
                # Reused on the source's word: pinned below with the rest of the batch's, before
                # anyone asks whether the store holds it, so a blob found held then stays so.
                tally.unchecked.append((first_entry + len(batch), source, item))
                reused.append(item.digest)
                batch.append((item, item.digest))
            elif item.open is None:  # a folder: no content
                batch.append((item, None))
            elif item.size <= SMALL_ITEM:
                # Small files cost mostly system calls (open, create, rename), which run in
                # parallel: two readers store them while this thread walks on.
                reading.append((len(batch), _readers().submit(_store_one, store, source, item, report, checkpoint)))
                batch.append((item, None))
            else:
                # A big file is hashed and copied by a thread of its own, so the readers go on
                # storing the small files after it meanwhile: the two use both cores.
                large = _large().submit(_store_one, store, source, item, report, checkpoint)
                reading.append((len(batch), large))
                batch.append((item, None))
            if large is not None and not large.done():
                waited = _wait_for_room(reading, waited, large)  # the batch lasts until it is stored
            elif time.monotonic() - started >= BATCH_SECONDS or len(reading) >= MAX_READING:
                break
    finally:
        _collect(reading, source, batch, pinned, tally)
    store.pin(reused)
    pinned.extend(reused)
    tally.reused += len(reused)
    return batch


def _readers() -> ThreadPoolExecutor:
    global _READERS
    if _READERS is None:
        _READERS = ThreadPoolExecutor(max_workers=READERS, thread_name_prefix="capture-read")
    return _READERS


def _large() -> ThreadPoolExecutor:
    global _LARGE
    if _LARGE is None:
        _LARGE = ThreadPoolExecutor(max_workers=1, thread_name_prefix="capture-large")
    return _LARGE


def _wait_for_room(reading: list[tuple[int, Future[Stored]]], waited: int, large: Future[Stored]) -> int:
    """Wait for the oldest small items while more than MAX_READING are in flight, so that a
    batch kept open by a big file holds a bounded number of them; returns the new `waited`."""
    while len(reading) - waited > MAX_READING:
        future = reading[waited][1]
        if future is not large:
            wait([future])
        waited += 1
    return waited


def _collect(
    reading: list[tuple[int, Future[Stored]]],
    source: Source,
    batch: list[tuple[SnapshotItem, str | None]],
    pinned: list[str],
    tally: CaptureTally,
) -> None:
    """Wait for every small item handed to the readers; record what each stored (and pinned),
    even when one failed, so that the caller releases every pin; then raise the first error."""
    failure: BaseException | None = None
    for position, future in reading:
        try:
            stored = future.result()
        except BaseException as error:  # noqa: B036 (re-raised below, after the rest are in)
            failure = failure or error
            continue
        pinned.append(stored.digest)
        if stored.new:
            tally.stored_bytes += stored.size
        item = batch[position][0]
        batch[position] = (item, stored.digest)
        try:
            _check_size(source, item, stored)
        except OperationFailed as error:
            failure = failure or error
    if failure is not None:
        raise failure


def _check_reused(
    store: ContentStore, pinned: list[str], tally: CaptureTally, checkpoint: Callable[[], None]
) -> None:
    """Read again every reused item whose blob the store lacks (or holds at another size)."""
    changed = False
    for index, source, item in tally.unchecked:
        checkpoint()
        assert item.digest is not None
        if store.holds(item.digest, item.size):
            continue
        tally.reused -= 1
        digest = _read_and_store(store, source, item, pinned, tally, lambda read: None, checkpoint)
        if digest != item.digest:
            tally.entries[index] = manifest_entry(source, item, digest)
            changed = True
    if changed:
        tally.checksum, tally.manifest_id = manifest_digests(tally.entries)


def _read_and_store(
    store: ContentStore,
    source: Source,
    item: SnapshotItem,
    pinned: list[str],
    tally: CaptureTally,
    report: Callable[[int], object],
    checkpoint: Callable[[], None],
) -> str:
    stored = _store_one(store, source, item, report, checkpoint)
    pinned.append(stored.digest)
    if stored.new:
        tally.stored_bytes += stored.size
    _check_size(source, item, stored)
    return stored.digest


@dataclass(frozen=True, slots=True)
class Stored:
    digest: str
    size: int
    new: bool  # newly written to the store (else it held the blob already)


def _store_one(
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
            "SOURCE_UNAVAILABLE",
            f"source {source.name!r}: could not read {item.path}: {error.strerror or error}",
        ) from error
    except OSError as error:  # the store's side: disk full, permissions
        raise OperationFailed(
            "STORAGE_FAILED", f"could not store {source.name}/{item.path}: {error.strerror or error}"
        ) from error
    if item.on_stored is not None and size == item.size:
        item.on_stored(digest)
    return Stored(digest, size, new)


def _check_size(source: Source, item: SnapshotItem, stored: Stored) -> None:
    if stored.size != item.size:
        raise OperationFailed(
            "SOURCE_CHANGED",
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
