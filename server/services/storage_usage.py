"""How much the backups take, from what is on disk now (not from the sizes recorded at capture)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from server.storage.blobs.content_store import ContentStore
from server.storage.local_copy.folder import LocalCopyFolder


@dataclass(frozen=True, slots=True)
class StorageUsage:
    stored_bytes: int  # the content store's blobs: shared between restore points, each counted once
    blob_count: int
    restore_point_count: int
    local_copies_bytes: int  # the ZIP files in the local copies folder
    captured_bytes: (
        int  # the restore points' sizes added up: what storing shared content once saves is this less stored_bytes
    )


class StorageUsageReader:
    def __init__(
        self,
        store: ContentStore,
        folder: LocalCopyFolder,
        count_restore_points: Callable[[], Awaitable[int]],
        total_size: Callable[[], Awaitable[int]],
    ):
        self._store = store
        self._folder = folder
        self._count_restore_points = count_restore_points
        self._total_size = total_size

    async def read(self) -> StorageUsage:
        """The usage now: a walk of the blobs and the local copies folder, in a thread."""
        (blob_count, stored), copies = await asyncio.gather(
            asyncio.to_thread(self._store.usage), asyncio.to_thread(self._folder.list)
        )
        return StorageUsage(
            stored_bytes=stored,
            blob_count=blob_count,
            restore_point_count=await self._count_restore_points(),
            local_copies_bytes=sum(copy.size for copy in copies),
            captured_bytes=await self._total_size(),
        )
