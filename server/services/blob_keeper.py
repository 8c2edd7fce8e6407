"""Keeping blobs while a restore point refers to them, and freeing them when none does."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from server.model.records import ManifestEntry
from server.storage.blobs.content_store import ContentStore
from server.storage.blobs.packs import REWRITE_BELOW
from server.storage.db import packs_repo
from server.storage.db import restore_points_repo as repo
from server.storage.db.database import Database

if TYPE_CHECKING:  # a session of server.storage.db.database, only handed on to a repository
    from sqlalchemy.ext.asyncio import AsyncSession

log = logging.getLogger(__name__)


@dataclass
class BlobKeeper:
    """Serialises "record a restore point" with "collect unused blobs", so that a blob is
    never collected between an operation unpinning it and its reference becoming visible.

    Deleting a restore point takes the same lock, so a manifest found held when a new point
    is recorded cannot lose its last other point (and its blobs) before the insert. The pack
    index's rows are written only under it too: with a restore point (its packed blobs not
    indexed yet), by a collection, and by a pack's rewrite.
    """

    db: Database
    store: ContentStore
    lock: asyncio.Lock
    rewrite_below: float = REWRITE_BELOW
    test_rewrite_pause: float = 0.0  # test-only: seconds a rewrite waits before its rows move

    async def load_index(self) -> int:
        """Read the pack index into the store; at start-up, before anything reads a blob."""
        async with self.db.read() as session:
            packs, rows = await packs_repo.load(session)
        return await asyncio.to_thread(self.store.packs.load_index, packs, rows)

    async def index_entries(self, session: AsyncSession, entries: Sequence[ManifestEntry]) -> list[str]:
        """In a restore point's own transaction, under the lock: record where its packed
        blobs are that no row says yet (its own new ones, and any another capture wrote
        but has not recorded: a restore point never refers to a blob without a row).
        Returns them, for `store.packs.mark_indexed` once the transaction is committed."""
        digests = {entry.sha256 for entry in entries if entry.sha256 is not None}
        located = self.store.packs.unindexed(digests)
        if any(where.pack not in self.store.packs.index.sealed for where in located.values()):
            await asyncio.to_thread(self.store.sync)  # the caller synced; kept as a guard
        sizes = {where.pack: self.store.packs.index.sizes[where.pack] for where in located.values()}
        await packs_repo.add(session, located, sizes)
        return list(located)

    async def collect(self, candidates: Iterable[str]) -> int:
        candidates = set(candidates)
        if not candidates:
            return 0
        async with self.lock:
            async with self.db.read() as session:
                used = await repo.referenced_digests(session, candidates)
            freed = await self._collect(candidates, used)
            await self._compact()
            return freed

    async def _collect(self, candidates: set[str], used: set[str]) -> int:
        unpacked: list[str] = []
        freed = await asyncio.to_thread(self.store.collect, candidates, used.__contains__, unpacked)
        if unpacked:
            async with self.db.write() as session:
                await packs_repo.remove_blobs(session, unpacked)
        return freed

    async def collect_all(self) -> int:
        """Remove every blob no restore point references (at start-up, nothing is pinned but
        by an apply being resumed), after any manifest no restore point refers to; then every
        pack file nothing refers to (torn by a crash) (temp files: see ContentStore.clear_temporary)."""
        async with self.lock:
            async with self.db.write() as session:
                await repo.delete_unused_manifests(session)
            async with self.db.read() as session:
                used = await repo.all_referenced_digests(session)
            present = await asyncio.to_thread(lambda: set(self.store.all_digests()))
            freed = await self._collect(present - used, used)
            await self._compact()
            return freed

    async def _compact(self) -> None:
        """Under the lock: remove the packs no blob is in, rewrite those mostly dead, merge
        the small ones once there are several."""
        if dead := await asyncio.to_thread(self.store.packs.remove_dead_packs):
            async with self.db.write() as session:
                await packs_repo.remove_packs(session, dead)
            log.info("removed %d pack file(s) no blob is in", len(dead))
        for group in await asyncio.to_thread(self.store.packs.packs_to_rewrite, self.rewrite_below):
            await self._rewrite(group)

    async def _rewrite(self, packs: list[str]) -> None:
        """Copy the live (and pinned) blobs of these packs into a new one, flushed; move their
        rows in one transaction; then the index and the files. A crash before the commit
        leaves the new pack without rows, after it the old ones: the start-up sweep removes
        either."""
        new, size, moves = await asyncio.to_thread(self.store.packs.write_rewritten, packs)
        if self.test_rewrite_pause:
            log.warning("test pause at pack-rewrite: %s into %s", ", ".join(packs), new)
            await asyncio.sleep(self.test_rewrite_pause)
        try:
            async with self.db.write() as session:
                await packs_repo.move(session, packs, new, size, moves)
        except BaseException:
            await asyncio.to_thread(self.store.packs.remove_dead_packs)  # the new one, which no blob is in
            raise
        await asyncio.to_thread(self.store.packs.switch_packs, packs, new, size, moves)
        log.info("rewrote %d pack(s) into %s (%d blobs, %d bytes)", len(packs), new, len(moves), size)
