"""Download one item through a signed link (createItemDownloadUrl, served at /download/item/...).

`locate` checks what a client asks for and names the entry a link will open; `open` opens it
when the link is followed: a file, a link's target or a settings module as its bytes, all
checked against the SHA-256 before the first byte is handed out; a table as CSV (its file
checked first, then converted as it is sent); a folder as a ZIP made as it is sent, each
member checked as it is read (a damaged one breaks the ZIP off, see folder_zip.py).

The restore point is held from the moment a link is followed until its response ends, so a
delete of it is BUSY meanwhile instead of removing blobs under the download.
"""

from __future__ import annotations

import asyncio
import io
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import BinaryIO

from server.model.access.download_links import ItemLink
from server.model.errors import InvalidInput, NotFound, quoted
from server.model.items import (
    TABLE_SUFFIX,
    ItemKind,
    entry_path_of_item,
    item_kind,
    item_path_of_entry,
    parse_item_path,
)
from server.services.items.copy_reader import CopyEntries, CopyItemReader
from server.services.items.folder_zip import zip_chunks
from server.services.items.reader import ItemReader, RestorePointReader
from server.services.items.table_csv import csv_chunks
from server.services.local_copies.service import LocalCopyService
from server.services.restore_points import RestorePointService
from server.sources.base import Source
from server.storage.blobs.content_store import ContentStore
from server.storage.db.database import Database
from server.storage.local_copy.folder import LocalCopyFolder

PIECE = 1024 * 1024  # what a stream that cannot be served from a descriptor is sent in
RESTORE_POINT = "restorePoint"  # ItemLink.origin of an item read from a restore point
LOCAL_COPY = "localCopy"  # ItemLink.origin of an item read out of a local copy, in place


@dataclass(frozen=True, slots=True)
class ItemDownload:
    """What a followed link sends: either `descriptor` (an open file of `size` bytes, already
    checked, at its start: the web layer serves it with Range) or `chunks` (a blocking iterator
    of the content, made or read as it is sent; `size` when known before). `release` ends the
    hold on what is read."""

    file_name: str
    media_type: str
    release: Callable[[], None]
    etag: str | None = None
    modified_at: datetime | None = None  # the item's own time (its restore point's when it kept none)
    descriptor: int | None = None
    size: int | None = None
    chunks: Iterator[bytes] | None = None


class ItemDownloadService:
    def __init__(
        self,
        *,
        db: Database,
        store: ContentStore,
        restore_points: RestorePointService,
        local_copies: LocalCopyService,
        copy_folder: LocalCopyFolder,
        copy_entries: CopyEntries,
        sources: Sequence[Source],
    ) -> None:
        self._db = db
        self._store = store
        self._points = restore_points
        self._copies = local_copies
        self._copy_folder = copy_folder
        self._copy_entries = copy_entries
        self._kinds = {source.name: source.kind for source in sources}

    async def locate(
        self, *, restore_point_id: str | None, local_copy_id: str | None, source: str, path: str
    ) -> ItemLink:
        """The item a link will open; INVALID_INPUT for a path that could leave its source,
        NOT_FOUND for a restore point, source or path it does not hold."""
        if (restore_point_id is None) == (local_copy_id is None):
            raise InvalidInput("give exactly one of restorePointId and localCopyId", field="restorePointId")
        source_kind = self._kinds.get(source)
        item = parse_item_path(path, source_kind=source_kind)
        if item.pointer is not None:
            raise InvalidInput(
                "a download gives a whole settings module: name it without '#' and a pointer", field="path"
            )
        entry_path = entry_path_of_item(item.path, source_kind)
        if local_copy_id is not None:
            origin, origin_id, what = LOCAL_COPY, local_copy_id, f"local copy {local_copy_id}"
        else:
            assert restore_point_id is not None
            origin, origin_id, what = RESTORE_POINT, restore_point_id, f"restore point {restore_point_id}"
        reader = await self._reader(origin, origin_id)
        try:
            if not await reader.has_source(source):
                raise NotFound(f"{what} holds no source {quoted(source)}", field="source")
            if not entry_path:
                kind = ItemKind.FOLDER  # the whole source
            elif (entry := await reader.entry(source, entry_path)) is not None:
                kind = item_kind(entry.kind, source_kind)
            else:
                raise NotFound(f"{what} holds nothing at {quoted(path)} in source {quoted(source)}", field="path")
        finally:
            reader.release()
        return ItemLink(origin, origin_id, source, entry_path, kind.value)

    async def open(self, link: ItemLink) -> ItemDownload:
        """Open what a link names (NOT_FOUND once its restore point or entry is gone;
        ContentDamaged for a single item whose bytes do not match)."""
        if link.origin not in (RESTORE_POINT, LOCAL_COPY):
            raise NotFound(f"nothing to download from {quoted(link.origin)}")
        reader = await self._reader(link.origin, link.origin_id)
        try:
            return await self._open(reader, link, ItemKind(link.kind))
        except BaseException:
            reader.release()
            raise

    async def _open(self, reader: ItemReader, link: ItemLink, kind: ItemKind) -> ItemDownload:
        source_kind = self._kinds.get(link.source)
        if kind is ItemKind.FOLDER:
            entries = await reader.entries_under(link.source, link.entry_path)
            name = (link.entry_path.rpartition("/")[2] or link.source) + ".zip"
            chunks = zip_chunks(entries, link.entry_path, reader.read_checked, fallback_time=reader.made_at)
            return ItemDownload(file_name=name, media_type="application/zip", release=reader.release, chunks=chunks)
        entry = await reader.entry(link.source, link.entry_path)
        if entry is None:
            raise NotFound(f"the restore point holds nothing at {quoted(link.entry_path)} any more")
        stream = await asyncio.to_thread(reader.open_checked, entry)
        name = item_path_of_entry(entry.path, source_kind).rpartition("/")[2]
        if kind is ItemKind.TABLE:
            # By the link's kind, not the source's now: a link made before the source left the
            # config still opens its table.
            table = entry.path.removesuffix(TABLE_SUFFIX).rpartition("/")[2]
            return ItemDownload(
                file_name=table + ".csv",
                media_type="text/csv; charset=utf-8",
                release=reader.release,
                chunks=csv_chunks(stream, table),
            )
        media_type = "application/json" if kind is ItemKind.MODULE else "application/octet-stream"
        whole = ItemDownload(
            file_name=name,
            media_type=media_type,
            release=reader.release,
            etag=f'"{entry.sha256}"',
            modified_at=entry.mtime or reader.made_at,
            size=entry.size,
        )
        if not _seekable(stream):  # e.g. a member read out of a copy: sent as it is read, no Range
            return replace(whole, chunks=_pieces(stream))
        return replace(whole, descriptor=await asyncio.to_thread(_descriptor, stream))

    async def _reader(self, origin: str, origin_id: str) -> ItemReader:
        if origin == LOCAL_COPY:
            copy, copy_hold = await self._copies.hold(origin_id, field="localCopyId")
            return CopyItemReader(folder=self._copy_folder, entries=self._copy_entries, copy=copy, hold=copy_hold)
        point, hold = await self._points.hold(origin_id, field="restorePointId")
        return RestorePointReader(db=self._db, store=self._store, point=point, hold=hold)


def _seekable(stream: BinaryIO) -> bool:
    """A file on disk, or bytes in memory: what can be served from a descriptor, with Range."""
    if isinstance(stream, io.BytesIO):
        return True
    try:
        stream.fileno()
    except (OSError, AttributeError, ValueError):
        return False
    return stream.seekable()


def _pieces(stream: BinaryIO) -> Iterator[bytes]:
    with stream:
        while piece := stream.read(PIECE):
            yield piece


def _descriptor(stream: BinaryIO) -> int:
    """An open descriptor of the stream's bytes, at its start, for the caller to close: its own
    for a file; for bytes in memory (a small packed blob), an anonymous memory file holding them."""
    with stream:
        try:
            fd = os.dup(stream.fileno())
        except (OSError, AttributeError, ValueError):
            fd = os.memfd_create("item", os.MFD_CLOEXEC)
            view = memoryview(stream.read())
            while view:
                view = view[os.write(fd, view) :]
        os.lseek(fd, 0, os.SEEK_SET)
    return fd
