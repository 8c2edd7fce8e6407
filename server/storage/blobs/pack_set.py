"""The pack files of a content store: appending small blobs, sealing, reading ranges, and
removing or rewriting whole packs (the format and the in-memory index: server/storage/blobs/packs.py).

Appends are serialised by one lock (they set offsets); reads take none (one dict look-up,
then pread). Removal and rewrites are the keeper's (server/services/blob_keeper.py): only
its lock holder calls them, so nothing else moves blobs out of a sealed pack meanwhile.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from server.storage.blobs.packs import (
    MAGIC,
    MERGE_SMALL,
    PACK_LIMIT,
    SMALL_PACK,
    Location,
    OpenPack,
    PackIndex,
    create_pack,
    new_pack_id,
    pack_files,
    pack_name,
)
from server.storage.durability import flush_files, write_all

log = logging.getLogger(__name__)


class PackSet:
    """The packs under `folder`: the one being appended to, those full but not flushed yet,
    and the sealed ones the index knows."""

    def __init__(self, folder: Path, *, create: bool, pause_after_appends: int | None = None) -> None:
        self.folder = folder
        self._folder_name = str(folder)
        if create:
            folder.mkdir(parents=True, exist_ok=True)
        self.index = PackIndex()
        self._open: OpenPack | None = None
        self._full: list[OpenPack] = []  # sealed for being full, not flushed yet
        self._lock = threading.Lock()  # appends, one at a time (offsets)
        self._pause_after_appends = pause_after_appends  # test-only: see server/test_seams.py

    def read(self, digest: str, limit: int | None = None) -> bytes | None:
        """A packed blob's bytes (up to `limit`), or None when it is not packed.

        A rewrite may replace its pack between the look-up and the open: looked up again."""
        for _ in range(3):
            where = self.index.get(digest)
            if where is None:
                return None
            try:
                fd = os.open(pack_name(self._folder_name, where.pack), os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                if self.index.get(digest) == where:
                    # Its pack is gone (removed by hand): a loose copy stored since, if any, is read.
                    return None
                continue
            try:
                wanted = where.size if limit is None else min(limit, where.size)
                parts: list[bytes] = []
                done = 0
                while done < wanted and (part := os.pread(fd, wanted - done, where.start + done)):
                    parts.append(part)
                    done += len(part)
            finally:
                os.close(fd)
            return parts[0] if len(parts) == 1 else b"".join(parts)
        raise FileNotFoundError(f"the pack holding {digest} went away while it was read")

    def intact(self, where: Location) -> bool:
        """Whether the pack file still holds this range (one stat): a pack removed or cut short
        (by hand, a disk error) is not trusted, as a loose blob of the wrong size is not."""
        try:
            return os.stat(pack_name(self._folder_name, where.pack)).st_size >= where.start + where.size
        except FileNotFoundError:
            return False

    def append(self, digest: str, data: bytes) -> bool:
        """Append a blob to the open pack (made on demand); False if another writer won."""
        with self._lock:
            if digest in self.index:  # two captures stored the same new content at once
                return False
            pack = self._open
            if pack is None:
                pack = self._open = create_pack(self._folder_name)
                with self.index.lock:
                    self.index.sizes[pack.id] = pack.end
            try:
                write_all(pack.fd, data)
            except BaseException:
                # The tail may be torn: no more appends to this pack; its blobs so far stay.
                self._open = None
                self._full.append(pack)
                raise
            where = Location(pack.id, pack.end, len(data))
            pack.end += len(data)
            pack.digests.append(digest)
            with self.index.lock:
                self.index.add(digest, where, indexed=False)
                self.index.sizes[pack.id] = pack.end
            if pack.end >= PACK_LIMIT:
                self._open = None
                self._full.append(pack)
            if self._pause_after_appends is not None and len(pack.digests) == self._pause_after_appends:
                _test_pause(f"pack-append: {pack.id} holds {len(pack.digests)} blobs, not flushed")
        return True

    def unflushed(self) -> list[str]:
        """The blobs appended to packs not flushed yet."""
        with self._lock:
            return [digest for pack in [*self._full, self._open] if pack for digest in pack.digests]

    def seal(self) -> list[OpenPack]:
        """Seal the open pack (appends go to a new one from here on); every pack to flush."""
        with self._lock:
            packs, self._full = self._full, []
            if self._open is not None:
                packs.append(self._open)
                self._open = None
        return packs

    def paths(self, packs: Iterable[OpenPack]) -> list[Path]:
        return [Path(pack_name(self._folder_name, pack.id)) for pack in packs]

    def flushed(self, packs: Iterable[OpenPack]) -> None:
        """These sealed packs are on disk: their blobs may be indexed, they may be rewritten."""
        for pack in packs:
            os.close(pack.fd)
            with self.index.lock:
                self.index.sealed.add(pack.id)

    def not_flushed(self, packs: list[OpenPack]) -> None:
        """The flush failed: to be flushed by the next sync."""
        with self._lock:
            self._full[:0] = packs

    def bytes_on_disk(self) -> int:
        total = 0
        for pack in pack_files(self._folder_name):
            with contextlib.suppress(FileNotFoundError):
                total += os.stat(pack_name(self._folder_name, pack)).st_size
        return total

    def drop(self, digest: str) -> Location | None:
        """Take a collected blob out of the index (its bytes stay until a rewrite)."""
        with self.index.lock:
            return self.index.drop(digest)

    def load_index(self, packs: dict[str, int], rows: Iterable[tuple[str, str, int, int]]) -> int:
        """Take the database's index (pack sizes; digest, pack, start, size), before serving."""
        count = 0
        with self.index.lock:
            for pack, size in packs.items():
                self.index.sizes[pack] = size
                self.index.live.setdefault(pack, 0)
                self.index.sealed.add(pack)
            for digest, pack, start, size in rows:
                self.index.add(digest, Location(pack, start, size), indexed=True)
                count += 1
        return count

    def unindexed(self, digests: Iterable[str]) -> dict[str, Location]:
        """Those of these blobs that are packed but have no database row yet, with where they are."""
        with self.index.lock:
            return {d: where for d in set(digests) if d in self.index.unindexed and (where := self.index.get(d))}

    def mark_indexed(self, digests: Iterable[str]) -> None:
        with self.index.lock:
            self.index.unindexed.difference_update(digests)

    def remove_dead_packs(self) -> list[str]:
        """Remove every pack file no blob of the index is in (torn by a crash, emptied by
        collection, replaced by a rewrite), but the ones being written; their ids."""
        with self._lock:
            with self.index.lock:
                # One being written whose blobs were all collected (an apply's capture of the
                # live state, say) goes too: no blob of the index is in it, none can be.
                for emptied in [p for p in [*self._full, self._open] if p and not self.index.live.get(p.id)]:
                    os.close(emptied.fd)
                    if emptied is self._open:
                        self._open = None
                    else:
                        self._full.remove(emptied)
            writing = {pack.id for pack in [*self._full, self._open] if pack is not None}
            with self.index.lock:
                on_disk = set(pack_files(self._folder_name))
                dead = [
                    pack
                    for pack in on_disk | set(self.index.sizes)
                    if pack not in writing and not self.index.live.get(pack)
                ]
                for pack in dead:
                    self.index.forget_pack(pack)
        for pack in dead:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(pack_name(self._folder_name, pack))
        return dead

    def packs_to_rewrite(self, below: float) -> list[list[str]]:
        """Groups of sealed packs to rewrite, each into one new pack: those whose live bytes
        are under `below` of their content, and the small ones once there are MERGE_SMALL of
        them (a capture that adds a few small blobs makes a pack of its own)."""
        with self.index.lock:
            live = {pack: self.index.live.get(pack, 0) for pack in self.index.sealed}
            content = {pack: max(self.index.sizes.get(pack, 0) - len(MAGIC), 0) for pack in self.index.sealed}
        dying = sorted(pack for pack in live if live[pack] < below * content[pack])
        small = sorted(pack for pack in live if pack not in dying and content[pack] < SMALL_PACK)
        if len(small) < MERGE_SMALL:
            small = []
        groups: list[list[str]] = []
        group: list[str] = []
        size = 0
        for pack in dying + small:
            if group and size + live[pack] > PACK_LIMIT:
                groups.append(group)
                group, size = [], 0
            group.append(pack)
            size += live[pack]
        if group:
            groups.append(group)
        return [group for group in groups if len(group) > 1 or group[0] in dying]

    def write_rewritten(self, packs: Sequence[str]) -> tuple[str, int, dict[str, Location]]:
        """Copy the blobs the index has in `packs` (pinned ones too) into one new pack,
        flushed; returns (new pack id, its size, where each blob is in it). The index is
        unchanged: see switch_packs. Only the keeper's lock holder calls this, so nothing else
        moves blobs out of a sealed pack meanwhile."""
        new = new_pack_id()
        target = pack_name(self._folder_name, new)
        moves: dict[str, Location] = {}
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            try:
                write_all(fd, MAGIC)
                end = len(MAGIC)
                for pack in packs:
                    entries = sorted(self.index.in_pack(pack).items(), key=lambda item: item[1].start)
                    source = os.open(pack_name(self._folder_name, pack), os.O_RDONLY | os.O_CLOEXEC)
                    try:
                        for digest, where in entries:
                            data = os.pread(source, where.size, where.start)
                            write_all(fd, data)
                            moves[digest] = Location(new, end, len(data))
                            end += len(data)
                    finally:
                        os.close(source)
                os.fsync(fd)
            finally:
                os.close(fd)
        except BaseException:
            _unlink_quietly(target)
            raise
        flush_files(self.folder, [], [self.folder])
        return new, end, moves

    def switch_packs(self, old: Sequence[str], new: str, size: int, moves: dict[str, Location]) -> None:
        """After the database moved the rows: the index points at the new pack, the old ones go."""
        with self.index.lock:
            self.index.sizes[new] = size
            self.index.live.setdefault(new, 0)
            self.index.sealed.add(new)
            for digest, where in moves.items():
                unindexed = digest in self.index.unindexed
                if self.index.drop(digest) is not None:
                    self.index.add(digest, where, indexed=not unindexed)
            for pack in old:
                self.index.forget_pack(pack)
        for pack in old:
            _unlink_quietly(pack_name(self._folder_name, pack))


def _test_pause(what: str) -> None:
    """Test-only: hold the appending thread until the test kills the process."""
    log.warning("test pause at %s", what)
    while True:
        time.sleep(3600)


def _unlink_quietly(name: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(name)
