"""What browsing reads of one manifest, wherever it is kept: a restore point's in the database
(a page at a time through the children index) or a local copy's, read from the copy into
memory once per version of its file. Both page by the same (source, path) cursor."""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Protocol

from server.model.records import ManifestEntry
from server.storage.db import items_repo
from server.storage.db.database import Database


class ManifestView(Protocol):
    """One manifest's entries as browsing asks for them."""

    what: str  # "restore point rp_...", "local copy lc_...": for messages

    async def children_page(
        self, *, source: str | None, folder: str, first: int, after: str | None
    ) -> list[ManifestEntry]:
        """Up to first + 1 entries directly inside `folder`, by (source, path), after `after`."""
        ...

    async def count_children(self, *, source: str | None, folder: str) -> int: ...

    async def entry_at(self, source: str, path: str) -> ManifestEntry | None: ...

    async def sources(self) -> list[str]:
        """The sources it holds entries of, sorted."""
        ...

    async def row_counts(self, digests: Sequence[str]) -> Mapping[str, int]: ...


class StoredManifest:
    """A restore point's manifest, read from the database a page at a time."""

    def __init__(self, db: Database, point_id: str) -> None:
        self._db = db
        self._point_id = point_id
        self.what = f"restore point {point_id}"

    async def children_page(
        self, *, source: str | None, folder: str, first: int, after: str | None
    ) -> list[ManifestEntry]:
        async with self._db.read() as session:
            return await items_repo.children_page(
                session, self._point_id, source=source, folder=folder, first=first, after=after
            )

    async def count_children(self, *, source: str | None, folder: str) -> int:
        async with self._db.read() as session:
            return await items_repo.count_children(session, self._point_id, source=source, folder=folder)

    async def entry_at(self, source: str, path: str) -> ManifestEntry | None:
        async with self._db.read() as session:
            return await items_repo.entry_at(session, self._point_id, source, path)

    async def sources(self) -> list[str]:
        async with self._db.read() as session:
            return await items_repo.sources_of(session, self._point_id)

    async def row_counts(self, digests: Sequence[str]) -> Mapping[str, int]:
        async with self._db.read() as session:
            return await items_repo.row_counts(session, digests)


class CopyManifest:
    """A local copy's manifest held in memory, indexed by folder (built once per version of
    the copy's file: see CopyEntries). A copy carries no row counts."""

    def __init__(self, copy_id: str, entries: Sequence[ManifestEntry]) -> None:
        self.what = f"local copy {copy_id}"
        self._at = {(e.source, e.path): e for e in entries}
        children: dict[tuple[str, str], list[ManifestEntry]] = defaultdict(list)
        for entry in entries:
            children[(entry.source, entry.path.rpartition("/")[0])].append(entry)
        self._children = {key: sorted(found, key=lambda e: e.path) for key, found in children.items()}
        self._sources = sorted({e.source for e in entries})

    def _inside(self, source: str | None, folder: str) -> list[ManifestEntry]:
        if source is not None:
            return self._children.get((source, folder), [])
        return [e for name in self._sources for e in self._children.get((name, folder), [])]

    async def children_page(
        self, *, source: str | None, folder: str, first: int, after: str | None
    ) -> list[ManifestEntry]:
        inside = self._inside(source, folder)
        start = 0
        if after:
            key = items_repo.decode_item_cursor(after)
            start = bisect.bisect_right(inside, key, key=lambda e: (e.source, e.path))
        return inside[start : start + first + 1]

    async def count_children(self, *, source: str | None, folder: str) -> int:
        return len(self._inside(source, folder))

    async def entry_at(self, source: str, path: str) -> ManifestEntry | None:
        return self._at.get((source, path))

    async def sources(self) -> list[str]:
        return list(self._sources)

    async def row_counts(self, digests: Sequence[str]) -> Mapping[str, int]:
        return {}
