"""Store a capture's items in the content store: off the event loop, in short batches.

Small items are stored by two reader threads, 16 to a task, big ones by two threads of their
own, all started when the capture starts; the manifest keeps the items' order.

Items whose source vouches for a digest (the hash cache, for an unchanged file) are pinned
without being read; the rest are streamed in constant memory. Whether the store still holds
a vouched-for blob is checked (one stat) once every item is through, even when a stored
manifest equals the new one: that manifest keeps its blobs from collection, but does not
prove they are there (a blob removed by hand, or by a second server before the data
folder's lock). Every digest is appended to `pinned` the moment
it is pinned, so the caller can release and collect them if the capture stops early.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from server.model.manifests import manifest_digests
from server.model.records import EntryKind, ManifestEntry
from server.operations.live import OperationContext
from server.services.capture.items import SMALL_ITEM, Stored, store_one
from server.sources.base import CapturedItem, Source
from server.storage.blobs.content_store import ContentStore

# A worker-thread batch ends after this long, or with this many small items in flight (once
# any big item in it is stored). Each batch ends with a wait for all of its items, which the
# readers sit out: 0.05 s and 512 items had them idle for much of a capture of small files.
BATCH_SECONDS = 0.25
MAX_READING = 4096  # a cancel waits for at most these (~0.2 s of small files)
SMALL_CHUNK = 16  # small items to one reader task: a future per file cost more than its pack append
READERS = 2
# Big items: two threads. Once the small files went 16 to a reader task (their CPU time cut
# by about a third), one big-item thread hashing and copying the bench's 768 MiB was what the
# capture waited for, with the readers done and a core idle.
LARGE_THREADS = 2
_READERS: ThreadPoolExecutor | None = None
_LARGE: ThreadPoolExecutor | None = None  # the threads for big items, beside the readers


@dataclass
class CaptureTally:
    entries: list[ManifestEntry] = field(default_factory=list)
    stored_bytes: int = 0  # bytes newly written to the store
    reused: int = 0  # items pinned through their digest hint, never read
    checksum: str = ""  # the manifest's digests: see server/model/manifests.py
    manifest_id: str = ""
    # The rows of each table file stored (by its digest), as its source counted them.
    row_counts: dict[str, int] = field(default_factory=dict)
    # Entries reused on a hint whose blob the store was not asked about yet, with their items.
    unchecked: list[tuple[int, Source, CapturedItem]] = field(default_factory=list)


async def store_captured(
    ctx: OperationContext,
    store: ContentStore,
    captures: Sequence[tuple[Source, Sequence[CapturedItem]]],
    pinned: list[str],
    *,
    manifest_held: Callable[[str], Awaitable[bool]] | None = None,
) -> CaptureTally:
    """Put every item's content in the store; returns the manifest entries and counts.

    `manifest_held(id)` says whether a manifest is stored, with its blobs kept from
    collection; without it every reused blob is looked up in the store.
    """
    total = sum(item.size for _, items in captures for item in items) or 1
    count = sum(len(items) for _, items in captures)
    ctx.progress(0.02, "Storing content")
    ctx.log(f"Storing {count} items, {total} bytes.")
    tally = CaptureTally()
    done = 0
    for source, items in captures:
        ahead = _start_big_items(store, source, items, ctx.checkpoint)
        try:
            await _store_items(ctx, store, source, items, pinned, tally, ahead, total, done)
        finally:
            if ahead:  # the capture stopped before reaching them
                await asyncio.to_thread(_release_ahead, ahead, pinned)
        done += sum(item.size for item in items)
    tally.checksum, tally.manifest_id = await asyncio.to_thread(manifest_digests, tally.entries)
    if tally.unchecked:
        # Even a blob a stored manifest refers to is looked for (one stat each): a stored
        # manifest does not prove its blobs are there (removed by hand, a disk error).
        held = manifest_held is not None and await manifest_held(tally.manifest_id)
        missing = await asyncio.to_thread(_check_reused, store, pinned, tally, ctx.checkpoint)
        if held and not missing:
            ctx.log("The same manifest is stored already, and with it every blob it refers to.")
        elif held:
            ctx.log(f"The same manifest is stored already, but {missing} of its blobs were missing: stored again.")
        tally.unchecked.clear()
    if tally.reused:
        ctx.log(f"{tally.reused} unchanged items reused without being read again.")
    return tally


async def _store_items(
    ctx: OperationContext,
    store: ContentStore,
    source: Source,
    items: Sequence[CapturedItem],
    pinned: list[str],
    tally: CaptureTally,
    ahead: dict[int, Future[Stored]],
    total: int,
    done: int,
) -> None:
    """One source's items, batch after batch in worker threads; entries appended in order."""
    loop = asyncio.get_running_loop()
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
            ahead,
        )
        per_item = ctx.pauses_per_item
        for item, digest in batch:
            tally.entries.append(manifest_entry(source, item, digest))
            if item.row_count is not None and digest is not None:
                tally.row_counts[digest] = item.row_count
            done += item.size
            if per_item:
                ctx.progress(0.02 + 0.95 * done / total)
                await ctx.pace()
        if not per_item:
            # Once per batch: per item, this cost more than reusing an unchanged file.
            ctx.progress(0.02 + 0.95 * done / total)
            await ctx.pace()
        position += len(batch)


def manifest_entry(source: Source, item: CapturedItem, digest: str | None) -> ManifestEntry:
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
    items: Sequence[CapturedItem],
    position: int,
    pinned: list[str],
    tally: CaptureTally,
    report: Callable[[int], object],
    checkpoint: Callable[[], None],
    ahead: dict[int, Future[Stored]] | None = None,
) -> list[tuple[CapturedItem, str | None]]:
    """Store items from `position` until the batch's time is up (at least one); blocking.

    `ahead` holds the big items already being stored (by position), see _start_big_items."""
    started = time.monotonic()
    batch: list[tuple[CapturedItem, str | None]] = []
    first_entry = len(tally.entries)  # the batch's entries are appended after it, in order
    reused: list[str] = []
    # Items being stored by the other threads: small ones SMALL_CHUNK to a task, big ones alone.
    reading: list[tuple[list[int], Future[Any]]] = []
    chunk: list[int] = []  # positions of small items not handed to a reader yet
    small = 0  # small items handed to the readers in this batch
    large: Future[Stored] | None = None  # the batch's latest big item
    waited = 0  # reading[:waited] are done, but for big items

    def hand_over() -> None:
        if chunk:
            work = [batch[at][0] for at in chunk]
            reading.append((list(chunk), _readers().submit(_store_chunk, store, source, work, report, checkpoint)))
            chunk.clear()

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
                chunk.append(len(batch))
                batch.append((item, None))
                small += 1
                if len(chunk) >= SMALL_CHUNK:
                    hand_over()
            else:
                # A big file is hashed and copied by a big-item thread, so the readers go on
                # storing the small files after it meanwhile: the two use both cores.
                started_ahead = ahead.pop(index, None) if ahead else None
                large = started_ahead or _large().submit(store_one, store, source, item, report, checkpoint)
                reading.append(([len(batch)], large))
                batch.append((item, None))
            if large is not None and not large.done():
                waited = _wait_for_room(reading, waited, large)  # the batch lasts until it is stored
            elif time.monotonic() - started >= BATCH_SECONDS or small >= MAX_READING:
                break
        hand_over()
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
        _LARGE = ThreadPoolExecutor(max_workers=LARGE_THREADS, thread_name_prefix="capture-large")
    return _LARGE


def _start_big_items(
    store: ContentStore, source: Source, items: Sequence[CapturedItem], checkpoint: Callable[[], None]
) -> dict[int, Future[Stored]]:
    """Start storing every big item to be read, on the big-item thread, by position.

    A tree lists them anywhere (the bench's three come after its 24,000 small files), and
    stored when the walk reached them they were a tail that the readers sat out."""
    return {
        index: _large().submit(store_one, store, source, item, lambda read: None, checkpoint)
        for index, item in enumerate(items)
        if item.open is not None and item.digest is None and item.size > SMALL_ITEM
    }


def _release_ahead(ahead: dict[int, Future[Stored]], pinned: list[str]) -> None:
    """After a capture stopped: cancel the big items not begun, wait for the others, and hand
    the blobs they stored to `pinned`, so that the caller releases and collects them."""
    for future in ahead.values():
        future.cancel()
    for future in ahead.values():
        if future.cancelled() or future.exception() is not None:
            continue
        pinned.append(future.result().digest)
    ahead.clear()


def _store_chunk(
    store: ContentStore,
    source: Source,
    items: Sequence[CapturedItem],
    report: Callable[[int], object],
    checkpoint: Callable[[], None],
) -> tuple[list[Stored | None], BaseException | None]:
    """Store small items one after the other, on one reader: one task (a future, a wake-up)
    for SMALL_CHUNK files instead of one each. As when each had a task of its own, one that
    fails does not stop the others: what they stored comes back (None in the failed one's
    place) with the first failure, for the caller to release every pin, then raise it."""
    done: list[Stored | None] = []
    failure: BaseException | None = None
    for item in items:
        try:
            done.append(store_one(store, source, item, report, checkpoint))
        except BaseException as error:  # noqa: B036 (handed to _collect, which raises it)
            done.append(None)
            failure = failure or error
    return done, failure


def _wait_for_room(reading: list[tuple[list[int], Future[Any]]], waited: int, large: Future[Stored]) -> int:
    """Wait for the oldest small items while more than MAX_READING are in flight, so that a
    batch kept open by a big file holds a bounded number of them; returns the new `waited`."""
    while len(reading) - waited > MAX_READING // SMALL_CHUNK:
        future = reading[waited][1]
        if future is not large:
            wait([future])
        waited += 1
    return waited


def _collect(
    reading: list[tuple[list[int], Future[Any]]],
    source: Source,
    batch: list[tuple[CapturedItem, str | None]],
    pinned: list[str],
    tally: CaptureTally,
) -> None:
    """Wait for every small item handed to the readers; record what each stored (and pinned),
    even when one failed, so that the caller releases every pin; then raise the first error."""
    failure: BaseException | None = None
    for positions, future in reading:
        try:
            result = future.result()
        except BaseException as error:  # noqa: B036 (re-raised below, after the rest are in)
            failure = failure or error
            continue
        done, stopped = result if isinstance(result, tuple) else ([result], None)
        failure = failure or stopped
        for position, stored in zip(positions, done, strict=True):
            if stored is None:
                continue
            pinned.append(stored.digest)
            if stored.new:
                tally.stored_bytes += stored.size
            # The item as stored: read again from a new stat if it changed while it was read.
            batch[position] = (stored.item, stored.digest)
    if failure is not None:
        raise failure


def _check_reused(store: ContentStore, pinned: list[str], tally: CaptureTally, checkpoint: Callable[[], None]) -> int:
    """Read again every reused item whose blob the store lacks (or holds at another size);
    returns how many there were."""
    changed = False
    missing = 0
    for index, source, item in tally.unchecked:
        checkpoint()
        assert item.digest is not None
        if store.holds(item.digest, item.size):
            continue
        missing += 1
        tally.reused -= 1
        stored = _read_and_store(store, source, item, pinned, tally, lambda read: None, checkpoint)
        if stored.digest != item.digest or stored.item is not item:
            tally.entries[index] = manifest_entry(source, stored.item, stored.digest)
            changed = True
    if changed:
        tally.checksum, tally.manifest_id = manifest_digests(tally.entries)
    return missing


def _read_and_store(
    store: ContentStore,
    source: Source,
    item: CapturedItem,
    pinned: list[str],
    tally: CaptureTally,
    report: Callable[[int], object],
    checkpoint: Callable[[], None],
) -> Stored:
    stored = store_one(store, source, item, report, checkpoint)
    pinned.append(stored.digest)
    if stored.new:
        tally.stored_bytes += stored.size
    return stored
