"""What browsing reads of one manifest, wherever it is kept: a restore point's in the database
(a page at a time through the children index) or a local copy's, read from the copy into
memory once per version of its file. Both page by the same (source, path) cursor."""

from __future__ import annotations

import bisect
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from server.model.records import ManifestEntry
from server.storage.db import items_repo
from server.storage.db.database import Database

if TYPE_CHECKING:  # a session of server.storage.db.database, only handed on to a repository
    from sqlalchemy.ext.asyncio import AsyncSession


class ManifestView(Protocol):
    """One manifest's entries as browsing asks for them."""

    what: str  # "restore point rp_...", "local copy lc_...": for messages

    async def require(self) -> None:
        """NotFound when what it views is gone (a restore point deleted since it was asked for)."""
        ...

    def reading(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Within it, every read below is of one moment (a restore point's: one transaction)."""
        ...

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
    """A restore point's manifest, read from the database a page at a time: within `reading()`
    in one transaction (a page costs one session, not one per query), else one per read."""

    def __init__(self, db: Database, point_id: str, require: Callable[[str], Awaitable[object]]) -> None:
        self._db = db
        self._point_id = point_id
        self._require = require  # RestorePointService.require: NotFound for an unknown id
        self._session: AsyncSession | None = None
        self.what = f"restore point {point_id}"

    @contextlib.asynccontextmanager
    async def reading(self) -> AsyncIterator[None]:
        async with self._db.read() as session:
            self._session = session
            try:
                yield
            finally:
                self._session = None

    async def require(self) -> None:
        await self._require(self._point_id)

    @contextlib.asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncSession]:
        if self._session is not None:
            yield self._session
        else:
            async with self._db.read() as session:
                yield session

    async def children_page(
        self, *, source: str | None, folder: str, first: int, after: str | None
    ) -> list[ManifestEntry]:
        async with self._read() as session:
            return await items_repo.children_page(
                session, self._point_id, source=source, folder=folder, first=first, after=after
            )

    async def count_children(self, *, source: str | None, folder: str) -> int:
        async with self._read() as session:
            return await items_repo.count_children(session, self._point_id, source=source, folder=folder)

    async def entry_at(self, source: str, path: str) -> ManifestEntry | None:
        async with self._read() as session:
            return await items_repo.entry_at(session, self._point_id, source, path)

    async def sources(self) -> list[str]:
        async with self._read() as session:
            return await items_repo.sources_of(session, self._point_id)

    async def row_counts(self, digests: Sequence[str]) -> Mapping[str, int]:
        if not digests:
            return {}
        async with self._read() as session:
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

    async def require(self) -> None:
        pass  # read from the copy when asked for: it was there then

    @contextlib.asynccontextmanager
    async def reading(self) -> AsyncIterator[None]:
        yield  # held in memory: every read is of the same moment anyway

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
