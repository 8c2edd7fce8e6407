"""The capture driver: every source read and its content stored (store.py), then the restore
point recorded; a capture that stops before that (a failure, a cancel) has the blobs it added
collected again, so nothing of a half-made restore point stays behind.

It knows the restore points only through `PointRecords` (RestorePointService, which starts
captures and keeps the records).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Protocol

from server.model.errors import OperationErrorCode, OperationFailed
from server.model.records import ManifestEntry, RestorePoint, RestorePointOrigin
from server.operations.live import OperationContext
from server.services.capture.store import CaptureTally, store_captured
from server.sources.base import CapturedItem, Source
from server.storage.blobs.content_store import ContentStore


class PointRecords(Protocol):
    """What a capture needs of the restore points' records."""

    def new_point(
        self,
        entries: Sequence[ManifestEntry],
        stored: int,
        *,
        label: str | None,
        note: str | None,
        origin: RestorePointOrigin,
        created_by: str | None,
        point_id: str | None = None,
        checksum: str | None = None,
        schedule_id: str | None = None,
    ) -> RestorePoint: ...

    async def record(
        self,
        point: RestorePoint,
        entries: Sequence[ManifestEntry],
        pinned: list[str],
        *,
        manifest_id: str | None = None,
        row_counts: Mapping[str, int] | None = None,
    ) -> RestorePoint | None: ...

    async def collect(self, digests: Iterable[str]) -> int: ...


async def capture_point(
    ctx: OperationContext,
    *,
    sources: Sequence[Source],
    store: ContentStore,
    records: PointRecords,
    manifest_held: Callable[[str], Awaitable[bool]],
    label: str | None,
    note: str | None,
    origin: RestorePointOrigin,
    created_by: str | None,
    schedule_id: str | None = None,
    expires_at: datetime | None = None,
) -> RestorePoint:
    """Snapshot every source into the content store and record the restore point."""
    pinned: list[str] = []
    try:
        tally = await capture_sources(ctx, sources=sources, store=store, pinned=pinned, manifest_held=manifest_held)
        ctx.progress(0.97, "Saving restore point")
        if store.unsynced():  # record() would flush them; here it is timed, for the log
            flushed = time.monotonic()
            await asyncio.to_thread(store.sync)
            ctx.log(f"New content flushed to disk in {time.monotonic() - flushed:.2f} s.")
        point = records.new_point(
            tally.entries,
            tally.stored_bytes,
            label=label,
            note=note,
            origin=origin,
            created_by=created_by,
            checksum=tally.checksum,
            schedule_id=schedule_id,
        )
        if expires_at is not None:
            point = dataclasses.replace(point, expires_at=expires_at)
        ctx.checkpoint()  # last chance to cancel: after this the point exists
        await records.record(point, tally.entries, pinned, manifest_id=tally.manifest_id, row_counts=tally.row_counts)
        ctx.set_subject(restore_point_id=point.id)
        ctx.log(
            f"Restore point {point.id} saved: {point.item_count} items, "
            f"{point.size_bytes} bytes, {point.stored_bytes} bytes newly stored."
        )
        if expires_at is not None:
            ctx.log(f"It expires at {expires_at.isoformat(timespec='seconds')} unless pinned before then.")
        return point
    except BaseException:
        store.unpin(pinned)
        await asyncio.shield(records.collect(pinned))
        raise


async def capture_sources(
    ctx: OperationContext,
    *,
    sources: Sequence[Source],
    store: ContentStore,
    pinned: list[str],
    manifest_held: Callable[[str], Awaitable[bool]],
) -> CaptureTally:
    """Read every source and store its content; returns the entries, newly stored bytes
    and manifest id.

    Each stored blob's digest is appended to `pinned` (and pinned): the caller records
    or releases them.
    """
    ctx.progress(0.0, "Reading sources")
    captures: list[tuple[Source, Sequence[CapturedItem]]] = []
    for source in sources:
        try:
            items = await source.capture()
        except OperationFailed:
            raise
        except Exception as error:
            raise OperationFailed(
                OperationErrorCode.SOURCE_UNAVAILABLE, f"source {source.name!r} could not be read: {error}"
            ) from error
        ctx.log(f"Source {source.name!r} ({source.kind}): {len(items)} items.")
        captures.append((source, items))
    return await store_captured(ctx, store, captures, pinned, manifest_held=manifest_held)
