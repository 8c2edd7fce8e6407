"""Capture a source into a real ContentStore the way a restore point does, without a server,
so a test can hand the blobs straight to the source's apply."""

from __future__ import annotations

from datetime import UTC, datetime

from server.model.records import Operation, OperationKind, OperationStatus
from server.operations.live import LiveOperation, OperationContext
from server.services.capture.store import CaptureTally, store_captured
from server.sources.base import Source
from server.storage.blobs.content_store import ContentStore


async def capture(source: Source, store: ContentStore) -> CaptureTally:
    """Snapshot `source` and store its items (through the real capture code); returns the
    manifest entries and counts. The blobs are left unpinned, as after a restore point."""
    items = await source.capture()
    op = Operation(
        id="op_test",
        kind=OperationKind.CREATE_RESTORE_POINT,
        status=OperationStatus.RUNNING,
        progress=0.0,
        stage=None,
        created_at=datetime.now(UTC),
        started_at=None,
        finished_at=None,
        requested_by=None,
        dismissed=False,
        error=None,
        restore_point_id=None,
        local_copy_id=None,
    )
    ctx = OperationContext(LiveOperation(op=op), notify=lambda live: None)
    pinned: list[str] = []
    try:
        return await store_captured(ctx, store, [(source, items)], pinned)
    finally:
        store.unpin(pinned)
