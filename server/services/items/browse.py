"""Browse a restore point, or a local copy in place, one folder at a time: what is directly inside
a folder of a source (or a source's top level, or every source's), a page at a time, read from
the manifest only (a restore point's in the database, a copy's read from the copy itself).

The kind of each item comes from its source as configured now (a settings document is a MODULE,
a table file a TABLE); a source the restore point holds but that is configured no more still
lists, its items as plain files, folders and links. A table's row count is read for a whole
page at once, from what the capture that stored its content counted.
"""

from __future__ import annotations

import asyncio
import dataclasses

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
from server.services.items.copy_reader import CopyEntries
from server.services.items.manifest_view import CopyManifest, ManifestView, StoredManifest
from server.services.local_copies.service import LocalCopyService
from server.services.restore_points import RestorePointService
from server.services.source_catalog import SourceCatalog
from server.storage.db import items_repo
from server.storage.db.database import Database


class ItemBrowser:
    """Lists a restore point's items folder by folder (RestorePoint.items), or a local copy's
    read in place (LocalCopy.items), through the ManifestView of either."""

    def __init__(
        self,
        *,
        db: Database,
        restore_points: RestorePointService,
        sources: SourceCatalog,
        local_copies: LocalCopyService,
        copy_entries: CopyEntries,
    ) -> None:
        self._db = db
        self._restore_points = restore_points
        self._sources = sources
        self._local_copies = local_copies
        self._copy_entries = copy_entries

    def source_kind(self, source: str) -> str | None:
        """The kind of a configured source; None for one that is configured no more."""
        found = self._sources.get(source)
        return found.kind if found is not None else None

    async def restore_point(self, point_id: str) -> ManifestView:
        """A restore point's manifest; whether the restore point exists is asked only when a read
        finds nothing (a listed page is proof enough: it saves a query on every page)."""
        return StoredManifest(self._db, point_id, self._restore_points.require)

    async def local_copy(self, copy_id: str) -> ManifestView:
        """A copy's manifest, read from the copy (KEY_MISSING, INVALID_ARCHIVE when it cannot be)."""
        copy = await self._local_copies.require(copy_id, field="id")
        entries = await asyncio.to_thread(self._copy_entries.of, copy)
        return CopyManifest(copy_id, entries)

    async def children(
        self, view: ManifestView, *, source: str | None, path: str | None, first: int, after: str | None
    ) -> Page[Item]:
        """A page of what is directly inside `path` of `source` (None or "": its top level;
        `source` None: every source's top level), ordered by source and path."""
        folder = self._folder_asked(source, path)
        async with view.reading():
            entries = await view.children_page(source=source, folder=folder, first=first, after=after)
            if not entries:
                # An empty page is where a bad request shows: what it names is checked only then.
                await view.require()
                if source is not None and folder:
                    await self._check_folder(view, source, folder, path or "")
                elif source is not None and source not in await view.sources():
                    raise await self._unknown_source(view, source)
            page, more = entries[:first], len(entries) > first
            kinds = {name: self.source_kind(name) for name in {entry.source for entry in page}}
            items = [item_of_entry(entry, kinds[entry.source]) for entry in page]
            tables = [item.sha256 for item in items if item.sha256 and item.kind is ItemKind.TABLE]
            if tables:
                counts = await view.row_counts(tables)
                items = [
                    dataclasses.replace(item, row_count=counts.get(item.sha256 or ""))
                    if item.kind is ItemKind.TABLE
                    else item
                    for item in items
                ]
        cursors = [items_repo.encode_item_cursor(entry.source, entry.path) for entry in page]
        return Page(items=items, cursors=cursors, has_next_page=more, total_count=None)

    async def count(self, view: ManifestView, *, source: str | None, path: str | None) -> int:
        """How many items `children` lists in all, over every page."""
        return await view.count_children(source=source, folder=self._folder_asked(source, path))

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

    async def _check_folder(self, view: ManifestView, source: str, folder: str, path: str) -> None:
        """Refuse a folder the manifest does not hold, or a path that is not a folder."""
        entry = await view.entry_at(source, folder)
        if entry is None:
            if source not in await view.sources():
                raise await self._unknown_source(view, source)
            raise NotFound(f"{view.what} holds nothing at {quoted(path)} in source {quoted(source)}", field="path")
        if entry.kind is not EntryKind.DIRECTORY:
            kind = self._kind_of(entry)
            shown = item_path_of_entry(entry.path, self.source_kind(source))
            raise InvalidInput(
                f"{quoted(shown)} in source {quoted(source)} is a {kind.lower()}, not a folder: "
                "only a folder has items inside it",
                field="path",
            )

    async def _unknown_source(self, view: ManifestView, source: str) -> NotFound:
        listed = ", ".join(quoted(name) for name in await view.sources()) or "none"
        return NotFound(f"{view.what} holds no source named {quoted(source)} (it holds: {listed})", field="source")
