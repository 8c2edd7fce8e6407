"""An item apply's plan: each touched source's state before (the capture the apply makes
first), with the chosen items put back from the restore point (see model/item_merge.py).

The merge is made again, the same, when a restarted server rolls an item apply forward: from
the state before kept in the journal, so both runs put back the same list. applyPreview(items:)
makes the same merge from the configuration as it is now (services/diffs.py).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from typing import Any

from server.model.errors import InvalidInput, OperationErrorCode, OperationFailed
from server.model.item_merge import ItemChoice, merge_entries, set_setting
from server.model.items import is_under
from server.model.records import EntryKind, ManifestEntry
from server.services.apply.plan import ApplyPlan
from server.sources.base import Source
from server.sources.settings.documents import module_document_bytes
from server.storage.blobs.content_store import ContentStore

ReadEntry = Callable[[ManifestEntry], bytes]
PutDocument = Callable[[bytes], tuple[str, int]]


def merge_source(
    now: Sequence[ManifestEntry],
    wanted: Sequence[ManifestEntry],
    mine: Sequence[ItemChoice],
    *,
    read_now: ReadEntry,
    read_then: ReadEntry,
    put: PutDocument,
) -> tuple[list[ManifestEntry], list[ManifestEntry]]:
    """One source's merged entries, and the restore point's entries of the whole items chosen
    (blocking). A setting chosen inside a module chosen whole goes back with the module."""
    whole = [c.path for c in mine if c.pointer is None]
    merged = merge_entries(now, wanted, whole)
    settings = [c for c in mine if c.pointer is not None and not any(is_under(c.path, w) for w in whole)]
    for path in dict.fromkeys(c.path for c in settings):
        then_entry = next(e for e in wanted if e.path == path)
        now_entry = next((e for e in now if e.path == path), None)
        document = _document(read_now(now_entry), now_entry) if now_entry is not None else {}
        then = _document(read_then(then_entry), then_entry)
        for choice in (c for c in settings if c.path == path):
            assert choice.pointer is not None
            try:
                document = set_setting(document, then, choice.pointer, shown=choice.shown)
            except InvalidInput as refused:
                raise OperationFailed(
                    OperationErrorCode.INVALID_ENTRY, f"{refused.message}; nothing was changed"
                ) from None
        digest, size = put(module_document_bytes(document))
        base = now_entry or then_entry
        entry = ManifestEntry(
            source=base.source,
            path=path,
            kind=EntryKind.FILE,
            size=size,
            sha256=digest,
            mode=base.mode,
            mtime=base.mtime,
        )
        merged = sorted([e for e in merged if e.path != path] + [entry], key=lambda e: e.path.split("/"))
    return merged, [e for e in wanted if any(is_under(e.path, w) for w in whole)]


def _document(data: bytes, entry: ManifestEntry) -> dict[str, Any]:
    try:
        document = json.loads(data)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        raise OperationFailed(OperationErrorCode.INVALID_ENTRY, f"module {entry.path!r} is not a JSON object")
    return document


def merged_plan(
    plan: ApplyPlan, choices: Sequence[ItemChoice], current: Sequence[ManifestEntry], store: ContentStore
) -> tuple[ApplyPlan, list[str]]:
    """The plan replacing each touched source by its merged entries (blocking: reads module
    documents and stores merged ones). Returns it with the digests it stored (pinned)."""
    steps: list[tuple[Source, list[ManifestEntry]]] = []
    chosen: dict[str, list[ManifestEntry]] = {}
    stored: list[str] = []

    def read(entry: ManifestEntry) -> bytes:
        assert entry.sha256 is not None
        with store.open(entry.sha256) as blob:
            return blob.read()

    def read_checked(entry: ManifestEntry) -> bytes:
        assert entry.sha256 is not None
        if not (store.has(entry.sha256) and store.verify(entry.sha256)):
            raise OperationFailed(
                OperationErrorCode.CONTENT_DAMAGED,
                f"{entry.source}/{entry.path}: content does not match its SHA-256; nothing was changed",
            )
        return read(entry)

    def put(data: bytes) -> tuple[str, int]:
        digest, size, _ = store.put_bytes(data)  # pinned: the caller keeps it until the apply ends
        stored.append(digest)
        return digest, size

    try:
        for source, wanted in plan.steps:
            now = [e for e in current if e.source == source.name]
            mine = [c for c in choices if c.source == source.name]
            merged, whole = merge_source(now, wanted, mine, read_now=read, read_then=read_checked, put=put)
            steps.append((source, merged))
            chosen[source.name] = whole
    except BaseException:
        store.unpin(stored)
        raise
    return ApplyPlan(point=plan.point, entries=plan.entries, steps=steps, chosen=chosen), stored


async def merge_in_thread(
    plan: ApplyPlan, choices: Sequence[ItemChoice], current: Sequence[ManifestEntry], store: ContentStore
) -> tuple[ApplyPlan, list[str]]:
    return await asyncio.to_thread(merged_plan, plan, choices, current, store)
