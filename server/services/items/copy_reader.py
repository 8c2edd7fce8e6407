"""A local copy's items read in place, without importing it: its entries from its manifest, and
its members' bytes out of the ZIP (an encrypted copy decrypted as a stream), each checked
against the manifest's SHA-256.

`CopyEntries` keeps the entries of the last few copies read, by the version of their file (a
copy replaced or rewritten is read again), so paging through a copy of 24,000 items reads its
manifest once. `CopyItemReader` is the ItemReader of one held copy: a single item is spooled
into a nameless temporary file as it is checked (then served with Range, and nothing is left
on disk by a crash); a folder's members come out of one pass over the copy, in its order.
"""

from __future__ import annotations

import asyncio
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack
from datetime import datetime
from typing import BinaryIO, TypeVar

from server.model.errors import CopyKeyMissing, InvalidArchive
from server.model.items import is_under
from server.model.records import EntryKind, LocalCopy, ManifestEntry
from server.operations.holds import Hold
from server.services.items.reader import damaged
from server.storage.encryption import EncryptedDamaged, KeyMissing
from server.storage.local_copy.contents import MemberDamaged, copy_entries, read_members
from server.storage.local_copy.folder import LocalCopyFolder

_KEPT_COPIES = 4  # a copy of 24,000 entries holds a few MB of them
T = TypeVar("T")


class CopyEntries:
    """The manifest entries of local copies, read from the copies themselves (blocking)."""

    def __init__(self, folder: LocalCopyFolder) -> None:
        self._folder = folder
        self._kept: OrderedDict[tuple[str, str], tuple[ManifestEntry, ...]] = OrderedDict()
        self._lock = threading.Lock()

    def of(self, copy: LocalCopy) -> tuple[ManifestEntry, ...]:
        """The copy's entries in its order; CopyKeyMissing or InvalidArchive when it cannot be read."""
        keyring = self._folder.keyring
        version = "" if keyring is None or not copy.encrypted else str(keyring.version())
        key = (copy.file_name, f"{copy.fingerprint}-{version}")
        with self._lock:
            if (known := self._kept.get(key)) is not None:
                self._kept.move_to_end(key)
                return known
        entries = tuple(_readable(lambda: copy_entries(self._folder.path_of(copy), keyring, self._folder.limits)))
        with self._lock:
            self._kept[key] = entries
            while len(self._kept) > _KEPT_COPIES:
                self._kept.popitem(last=False)
        return entries


def _readable(read: Callable[[], T]) -> T:
    """Run a read of a copy, its failures as the errors a client is shown."""
    try:
        return read()
    except KeyMissing as error:
        raise CopyKeyMissing(f"the copy is {error.message}") from None
    except EncryptedDamaged as error:
        raise InvalidArchive(f"the copy cannot be read: {error.message}") from None


class CopyItemReader:
    """One local copy's items, held (a delete of the copy is BUSY) until released."""

    def __init__(self, *, folder: LocalCopyFolder, entries: CopyEntries, copy: LocalCopy, hold: Hold) -> None:
        self._folder = folder
        self._copy = copy
        self._hold = hold
        self._entries = entries
        self._listed: Sequence[ManifestEntry] = ()
        self._pass = ExitStack()
        self._members: Iterator[tuple[ManifestEntry, Iterator[bytes]]] | None = None

    async def _all(self) -> tuple[ManifestEntry, ...]:
        return await asyncio.to_thread(self._entries.of, self._copy)

    @property
    def made_at(self) -> datetime:
        return self._copy.modified_at

    async def has_source(self, source: str) -> bool:
        return any(entry.source == source for entry in await self._all())

    async def entry(self, source: str, entry_path: str) -> ManifestEntry | None:
        return next((e for e in await self._all() if e.source == source and e.path == entry_path), None)

    async def entries_under(self, source: str, folder: str) -> Sequence[ManifestEntry]:
        self._listed = [
            e for e in await self._all() if e.source == source and e.path != folder and is_under(e.path, folder)
        ]
        return self._listed

    def open_checked(self, entry: ManifestEntry) -> BinaryIO:
        """The member spooled into a nameless temporary file beside the copies, checked as it
        was read: served from there with Range; gone when closed (or when the process dies)."""
        spool = tempfile.TemporaryFile(dir=self._folder.root)  # noqa: SIM115 (handed on open) O_TMPFILE: no name
        try:
            with self._open_pass([entry]) as members:
                for _, chunks in members:
                    for chunk in _checked_chunks(entry, chunks):
                        spool.write(chunk)
            spool.seek(0)
        except BaseException:
            spool.close()
            raise
        return spool

    def read_checked(self, entry: ManifestEntry) -> Iterator[bytes]:
        """A folder's members, in the order entries_under gave them, from one pass over the copy."""
        if self._members is None:
            files = [e for e in self._listed if e.kind is not EntryKind.DIRECTORY]
            self._members = self._pass.enter_context(self._open_pass(files))
        found = next(self._members, None)
        if found is None or (found[0].source, found[0].path) != (entry.source, entry.path):
            raise damaged(entry, missing=True)
        yield from _checked_chunks(entry, found[1])

    def _open_pass(
        self, files: Sequence[ManifestEntry]
    ) -> AbstractContextManager[Iterator[tuple[ManifestEntry, Iterator[bytes]]]]:
        path = self._folder.path_of(self._copy)
        return _readable(lambda: read_members(path, self._folder.keyring, files, self._folder.limits))

    def release(self) -> None:
        self._pass.close()
        self._hold.release()


def _checked_chunks(entry: ManifestEntry, chunks: Iterator[bytes]) -> Iterator[bytes]:
    try:
        yield from chunks
    except (MemberDamaged, EncryptedDamaged, InvalidArchive):
        raise damaged(entry) from None
    except KeyMissing as error:  # a key removed since the copy was listed
        raise CopyKeyMissing(f"the copy is {error.message}") from None
