"""Browse a restore point one folder at a time: what is directly inside a folder of a source (or
a source's top level, or every source's), a page at a time, read from the stored manifest only.

The kind of each item comes from its source as configured now (a settings document is a MODULE,
a table file a TABLE); a source the restore point holds but that is configured no more still
lists, its items as plain files, folders and links. A table's row count is read for a whole
page at once, from what the capture that stored its content counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from server.model.errors import InvalidInput, NotFound, quoted
from server.model.items import (
    Item,
    ItemKind,
    entry_path_of_item,
    item_of_entry,
    item_path_of_entry,
    parse_item_path,
)
from server.model.records import EntryKind, ManifestEntry, Page
from server.services.restore_points import RestorePointService
from server.services.source_catalog import SourceCatalog
from server.storage.db import items_repo
from server.storage.db.database import Database

if TYPE_CHECKING:  # a session of server.storage.db.database, only handed on to a repository
    from sqlalchemy.ext.asyncio import AsyncSession


class ItemBrowser:
    """Lists a restore point's items folder by folder (RestorePoint.items)."""

    def __init__(self, *, db: Database, restore_points: RestorePointService, sources: SourceCatalog) -> None:
        self._db = db
        self._restore_points = restore_points
        self._sources = sources

    def source_kind(self, source: str) -> str | None:
        """The kind of a configured source; None for one that is configured no more."""
        found = self._sources.get(source)
        return found.kind if found is not None else None

    async def children(
        self, point_id: str, *, source: str | None, path: str | None, first: int, after: str | None
    ) -> Page[Item]:
        """A page of what is directly inside `path` of `source` (None or "": its top level;
        `source` None: every source's top level), ordered by source and path."""
        folder = self._folder_asked(source, path)
        await self._restore_points.require(point_id, field="id")
        async with self._db.read() as session:
            if source is not None and folder:
                await self._check_folder(session, point_id, source, folder, path or "")
            entries = await items_repo.children_page(
                session, point_id, source=source, folder=folder, first=first, after=after
            )
            if source is not None and not entries and not await items_repo.holds_source(session, point_id, source):
                raise await self._unknown_source(session, point_id, source)
            page, more = entries[:first], len(entries) > first
            tables = [e.sha256 for e in page if e.sha256 and self._kind_of(e) is ItemKind.TABLE]
            counts = await items_repo.row_counts(session, tables)
        items = [
            item_of_entry(entry, self.source_kind(entry.source), row_count=counts.get(entry.sha256 or ""))
            for entry in page
        ]
        cursors = [items_repo.encode_item_cursor(entry.source, entry.path) for entry in page]
        return Page(items=items, cursors=cursors, has_next_page=more, total_count=None)

    async def count(self, point_id: str, *, source: str | None, path: str | None) -> int:
        """How many items `children` lists in all, over every page."""
        folder = self._folder_asked(source, path)
        async with self._db.read() as session:
            return await items_repo.count_children(session, point_id, source=source, folder=folder)

    def _kind_of(self, entry: ManifestEntry) -> ItemKind:
        return item_of_entry(entry, self.source_kind(entry.source)).kind

    def _folder_asked(self, source: str | None, path: str | None) -> str:
        """The manifest path of the folder asked for ("" for a top level); refuses a bad path."""
        if not path:
            return ""
        if source is None:
            raise InvalidInput("a path names a folder of one source: give `source` with it", field="path")
        kind = self.source_kind(source)
        parsed = parse_item_path(path, source_kind=kind)
        if parsed.pointer is not None:
            raise InvalidInput(
                f"{quoted(path)} names one setting of a module, not a folder: list the source's top level "
                "to see its modules",
                field="path",
            )
        return entry_path_of_item(parsed.path, kind)

    async def _check_folder(self, session: AsyncSession, point_id: str, source: str, folder: str, path: str) -> None:
        """Refuse a folder the restore point does not hold, or a path that is not a folder."""
        entry = await items_repo.entry_at(session, point_id, source, folder)
        if entry is None:
            if not await items_repo.holds_source(session, point_id, source):
                raise await self._unknown_source(session, point_id, source)
            raise NotFound(
                f"restore point {point_id} holds nothing at {quoted(path)} in source {quoted(source)}", field="path"
            )
        if entry.kind is not EntryKind.DIRECTORY:
            kind = self._kind_of(entry)
            shown = item_path_of_entry(entry.path, self.source_kind(source))
            raise InvalidInput(
                f"{quoted(shown)} in source {quoted(source)} is a {kind.lower()}, not a folder: "
                "only a folder has items inside it",
                field="path",
            )

    async def _unknown_source(self, session: AsyncSession, point_id: str, source: str) -> NotFound:
        held: Sequence[str] = await items_repo.sources_of(session, point_id)
        listed = ", ".join(quoted(name) for name in held) or "none"
        return NotFound(
            f"restore point {point_id} holds no source named {quoted(source)} (it holds: {listed})", field="source"
        )
