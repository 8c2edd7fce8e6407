"""Where a download reads an item from: its entries and their checked bytes.

A restore point is read from the database (one path, or everything under a folder) and the
content store. `ItemReader` is all a download needs, so a local copy read in place (its ZIP,
decrypted as a stream) plugs in as a second reader without touching the download itself.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import BinaryIO, Protocol

from server.model.diffs.diff_content import ContentDamaged
from server.model.records import ManifestEntry, RestorePoint
from server.operations.holds import Hold
from server.storage.blobs.content_store import BlobDamaged, ContentStore
from server.storage.db import items_repo
from server.storage.db.database import Database


class ItemReader(Protocol):
    """One restore point (or, later, one local copy), held for as long as it is read."""

    @property
    def made_at(self) -> datetime:
        """When it was made: the time given to an entry that kept none (a ZIP member needs one)."""
        ...

    async def has_source(self, source: str) -> bool: ...

    async def entry(self, source: str, entry_path: str) -> ManifestEntry | None: ...

    async def entries_under(self, source: str, folder: str) -> Sequence[ManifestEntry]:
        """Everything inside `folder` ("" for the whole source), a folder before what it holds."""
        ...

    def open_checked(self, entry: ManifestEntry) -> BinaryIO:
        """Blocking: the entry's bytes at their start, all checked against its SHA-256 first
        (ContentDamaged naming the entry otherwise). A file on disk or bytes in memory is served
        with Range; any other stream (a member of a copy, read a second time once checked) is
        sent as it is read, and must raise rather than give out bytes that differ."""
        ...

    def read_checked(self, entry: ManifestEntry) -> Iterator[bytes]:
        """Blocking: the entry's bytes in pieces, checked as they are read; ContentDamaged
        naming the entry before the last piece when they do not match. A folder's ZIP asks for
        its members in the order entries_under gave them, each read to its end before the
        next: a reader of one stream (an encrypted copy) can serve them all in one pass."""
        ...

    def release(self) -> None:
        """Let go of what is read (a delete of it is BUSY until then)."""
        ...


def damaged(entry: ManifestEntry, missing: bool = False) -> ContentDamaged:
    name = f"{entry.source}/{entry.path}"
    if missing:
        return ContentDamaged(f"the content of {name} is missing from the content store")
    return ContentDamaged(f"the content of {name} does not match its SHA-256: it is damaged")


class RestorePointReader:
    """A restore point's items: entries from the database, bytes from the content store."""

    def __init__(self, *, db: Database, store: ContentStore, point: RestorePoint, hold: Hold) -> None:
        self._db = db
        self._store = store
        self._point = point
        self._hold = hold

    @property
    def made_at(self) -> datetime:
        return self._point.created_at

    async def has_source(self, source: str) -> bool:
        async with self._db.read() as session:
            page = await items_repo.children_page(
                session, self._point.id, source=source, folder="", first=0, after=None
            )
        return bool(page)

    async def entry(self, source: str, entry_path: str) -> ManifestEntry | None:
        async with self._db.read() as session:
            return await items_repo.entry_at(session, self._point.id, source, entry_path)

    async def entries_under(self, source: str, folder: str) -> Sequence[ManifestEntry]:
        async with self._db.read() as session:
            return await items_repo.entries_under(session, self._point.id, source, folder)

    def open_checked(self, entry: ManifestEntry) -> BinaryIO:
        assert entry.sha256 is not None
        try:
            return self._store.open_checked(entry.sha256)
        except BlobDamaged:
            raise damaged(entry) from None
        except FileNotFoundError:
            raise damaged(entry, missing=True) from None

    def read_checked(self, entry: ManifestEntry) -> Iterator[bytes]:
        assert entry.sha256 is not None
        try:
            yield from self._store.read_checked(entry.sha256)
        except BlobDamaged:
            raise damaged(entry) from None
        except FileNotFoundError:
            raise damaged(entry, missing=True) from None

    def release(self) -> None:
        self._hold.release()
