"""Keeping blobs while a restore point refers to them, and freeing them when none does."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass

from server.storage import restore_points_repo as repo
from server.storage.content_store import ContentStore
from server.storage.database import Database


@dataclass
class BlobKeeper:
    """Serialises "record a restore point" with "collect unused blobs", so that a blob is
    never collected between an operation unpinning it and its reference becoming visible.

    Deleting a restore point takes the same lock, so a manifest found held when a new point
    is recorded cannot lose its last other point (and its blobs) before the insert.
    """

    db: Database
    store: ContentStore
    lock: asyncio.Lock

    async def collect(self, candidates: Iterable[str]) -> int:
        candidates = set(candidates)
        if not candidates:
            return 0
        async with self.lock:
            async with self.db.read() as session:
                used = await repo.referenced_digests(session, candidates)
            return await asyncio.to_thread(self.store.collect, candidates, used.__contains__)

    async def collect_all(self) -> int:
        """Remove every blob no restore point references (at start-up, nothing is pinned),
        after any manifest no restore point refers to (temp files: see ContentStore.clear_temporary)."""
        async with self.lock:
            async with self.db.write() as session:
                await repo.delete_unused_manifests(session)
            async with self.db.read() as session:
                used = await repo.all_referenced_digests(session)
            present = await asyncio.to_thread(lambda: set(self.store.all_digests()))
            return await asyncio.to_thread(self.store.collect, present - used, used.__contains__)
