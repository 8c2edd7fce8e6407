"""A folder tree as a source: files, folders (empty ones too), links, modes and mtimes.

Links are stored as links (their content is the target, verbatim) and never followed.
File content is read only when a restore point is stored, in chunks, so any size streams
in constant memory. With `verify = "fast"` (the default) a hash cache lets unchanged files
be reused without reading them; see hash_cache.py for the trade-off.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import os
import stat
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import BinaryIO

from server.clock import SYSTEM_CLOCK, Clock
from server.model.errors import OperationErrorCode, OperationFailed
from server.model.records import EntryKind, ManifestEntry
from server.sources.base import CapturedItem, ItemChanged, OpenBlob, SourceInfo
from server.sources.folder import items as single_items
from server.sources.folder.hash_cache import FileKey, HashCache, file_key
from server.sources.folder.root import Protected, RootId, check_root
from server.sources.folder.stage.reuse import LiveFiles, unlink_old_names
from server.sources.folder.stage.swap import StagedTree, commit_tree, side_paths, stage_tree
from server.sources.folder.stage.trash import remove_in_background, remove_tree, take_out
from server.sources.folder.walk import PathFilter, TreeItem, walk_tree

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class FolderSource:
    # The kind's public spelling, as the config file's `kind` and GraphQL's SourceKind.DIRECTORY
    # have it (and the log lines that name it); in code this is a folder source.
    kind = "directory"

    def __init__(
        self,
        name: str,
        path: Path,
        *,
        include: Sequence[str] = ("**",),
        exclude: Sequence[str] = (),
        verify: str = "fast",
        cache: HashCache | None = None,
        protected: Protected = (),
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.name = name
        # Resolved when the config was read: a link on it now was put there since, and is
        # refused at every use (tree_root.py), as is an overlap with a `protected` folder.
        self.path = path
        self.protected = protected
        self.filter = PathFilter(include, exclude)
        self.full_verify = verify == "full"
        self._cache = None if self.full_verify else cache
        self._clock = clock  # the racy window is measured on it (a test moves it forward)

    async def describe(self) -> SourceInfo:
        return await asyncio.to_thread(self._describe)

    async def describe_quickly(self) -> SourceInfo:
        """Whether the folder is there and readable, without walking the tree."""
        try:
            await asyncio.to_thread(self._root)
        except OperationFailed as failure:
            return SourceInfo(self.name, self.kind, False, None, location=str(self.path), problem=failure.message)
        return SourceInfo(self.name, self.kind, True, None, detail="the folder is there", location=str(self.path))

    async def capture(self) -> Sequence[CapturedItem]:
        return await asyncio.to_thread(self._capture)

    async def apply(self, entries: Sequence[ManifestEntry], open_blob: OpenBlob) -> None:
        """Swap in a tree built from the entries; what the globs leave out is kept."""
        staged = await asyncio.to_thread(self.stage, entries, open_blob)
        await staged.commit()
        await staged.tidy()

    def stage(
        self,
        entries: Sequence[ManifestEntry],
        open_blob: OpenBlob,
        *,
        on_bytes: Callable[[int], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> StagedFolder:
        """Build the new tree beside the folder, checking each file's SHA-256 as it is
        written; the folder is untouched until `commit`. Blocking: call it in a thread."""
        root = self.path
        check_root(self.name, root, self.protected, missing_ok=True)
        started_ns = self._clock.time_ns()
        # Files the hash cache vouches for are kept, not rewritten (tree_reuse.py); with
        # `verify = "full"` there is no cache, and every file is written from the store.
        live = LiveFiles(root, self._cache.known(str(root))) if self._cache else None
        with self.failures(root):
            staged = stage_tree(root, entries, open_blob, on_bytes=on_bytes, should_stop=should_stop, live=live)
        if live is not None and self._cache is not None:
            live.remember(self._cache, started_ns=started_ns)
        return StagedFolder(self, staged, started_ns, live.relinked if live else {})

    def discard_leftovers(self) -> None:
        """Remove a staging folder that a process stopped before its apply changed anything
        left beside the folder (the next apply would too, but it may be far off)."""
        try:
            check_root(self.name, self.path, self.protected, missing_ok=True)
        except OperationFailed:
            return  # not through a link: the next apply's own check says what is wrong
        stage, _ = side_paths(self.path)
        remove_tree(stage)
        take_out(self.path)  # and the trash folders of old trees a killed process was deleting

    @contextlib.contextmanager
    def failures(self, root: Path) -> Iterator[None]:
        """Name this source in a failure, and turn a file-system error into APPLY_FAILED."""
        try:
            yield
        except OperationFailed as failure:
            raise OperationFailed(failure.code, f"source {self.name!r}: {failure.message}") from None
        except OSError as error:
            raise OperationFailed(
                OperationErrorCode.APPLY_FAILED, f"source {self.name!r}: could not write {root}: {_reason(error)}"
            ) from error

    def _commit(
        self,
        staged: StagedTree,
        started_ns: int,
        relinked: Mapping[str, tuple[FileKey, str]],
        replaced: Callable[[Path], None],
    ) -> dict[str, FileKey]:
        """Swap the staged tree in; returns each file's key as committed (for the read-back)."""
        with self.failures(staged.root):
            written = commit_tree(
                staged,
                self.filter,
                remove=replaced,
                check=partial(check_root, self.name, staged.root, self.protected, missing_ok=True),
            )
        committed = {path: key for path, (key, _) in relinked.items()}
        committed.update((entry.path, file_key(info)) for entry, info in written)
        if self._cache is None:
            return committed
        # Each file was hashed as it was written, so its digest is known: remembering it
        # lets the apply's read-back (and the next capture) skip reading it again.
        prefix = str(staged.root).rstrip("/") + "/"
        rows = [
            (prefix + entry.path, file_key(info), entry.sha256 or "")
            for entry, info in written
            if entry.path not in relinked  # recorded when kept, and again by the removal of its old name
        ]
        self._cache.remember_all_written(rows, written_after_ns=started_ns)
        return committed

    def _read_back(self, entries: Sequence[ManifestEntry], committed: Mapping[str, FileKey]) -> bool:
        """Whether the folder holds exactly `entries` (mtimes aside), as a capture compared
        with them would say: one walk, and only files whose stat moved since the commit
        (`committed`: each file's key then) are read and hashed. Blocking."""
        root, root_id = self._root()
        managed = self._walk(root)
        self._same_root(root_id)
        wanted = {entry.path: entry for entry in entries}
        if len(managed) != len(wanted):
            return False
        prefix = str(root).rstrip("/") + "/"
        for item in managed:
            entry = wanted.get(item.path)
            if entry is None or entry.kind is not item.kind or entry.mode != stat.S_IMODE(item.stat.st_mode):
                return False
            if item.kind is EntryKind.DIRECTORY:
                if entry.size != 0 or entry.sha256 is not None:
                    return False
                continue
            absolute = prefix + item.path
            digest: str | None
            if item.kind is EntryKind.SYMLINK:
                target = self._read_link(absolute)
                size, digest = len(target), hashlib.sha256(target).hexdigest()
            else:
                size = item.stat.st_size
                if not self.full_verify and committed.get(item.path) == file_key(item.stat):
                    digest = entry.sha256  # hashed as it was written (or kept on the cache's word)
                else:
                    digest = _hash_file(absolute, item.stat)
            if size != entry.size or digest != entry.sha256:
                return False
        return True

    def _remove_old(
        self, old: Path, staged: StagedTree, started_ns: int, relinked: Mapping[str, tuple[FileKey, str]]
    ) -> None:
        """Delete a replaced tree in the background (see tree_trash.py); the second names of
        kept files first, so the hash cache stays right for them."""
        unlink_first = partial(unlink_old_names, old, staged.root, relinked, self._cache, started_ns=started_ns)
        remove_in_background(old, first=unlink_first if relinked else None)

    # -- blocking parts, run in worker threads ---------------------------------------------

    def _root(self) -> tuple[Path, RootId]:
        """The folder and its identity, checked now (tree_root.py); a missing, unreadable or
        linked one fails the operation clearly."""
        found = check_root(self.name, self.path, self.protected)
        assert found is not None
        return self.path, found

    def _same_root(self, root_id: RootId) -> None:
        """After a walk: the root is still the folder that was walked, and no link."""
        if check_root(self.name, self.path, self.protected) != root_id:
            raise OperationFailed(
                OperationErrorCode.SOURCE_UNAVAILABLE,
                f"source {self.name!r}: path {self.path} was replaced while it was read",
            )

    def _walk(self, root: Path) -> list[TreeItem]:
        try:
            managed = walk_tree(root, self.filter).managed
        except OSError as error:
            where = error.filename or root
            raise OperationFailed(
                OperationErrorCode.SOURCE_UNAVAILABLE, f"source {self.name!r}: cannot read {where}: {_reason(error)}"
            ) from error
        for item in managed:
            try:
                item.path.encode("utf-8")
            except UnicodeEncodeError:
                raise OperationFailed(
                    OperationErrorCode.SOURCE_UNAVAILABLE,
                    f"source {self.name!r}: the name {item.path.encode('utf-8', 'replace').decode()!r} "
                    "is not valid UTF-8",
                ) from None
        return managed

    def _capture(self) -> list[CapturedItem]:
        # Taken before the walk: a file changed after this moment is never cached as hashed.
        started_ns = self._clock.time_ns()
        root, root_id = self._root()
        managed = self._walk(root)
        self._same_root(root_id)
        known = self._cache.known(str(root)) if self._cache else {}
        items: list[CapturedItem] = []
        seen: set[str] = set()
        prefix = str(root).rstrip("/") + "/"  # strings: a Path join per item cost more than its stat
        for tree_item in managed:
            absolute = prefix + tree_item.path
            if tree_item.kind is EntryKind.FILE:
                seen.add(absolute)
                hint = known.get(absolute)
                digest = hint[1] if hint and hint[0] == file_key(tree_item.stat) else None
            else:
                digest = None
            items.append(self.captured_item(tree_item, absolute, started_ns, root_id, digest))
        if self._cache:
            self._cache.forget(path for path in known if path not in seen)
        return items

    def captured_item(
        self, tree_item: TreeItem, absolute: str, started_ns: int, root_id: RootId, digest: str | None
    ) -> CapturedItem:
        """One walked item as a capture has it (`digest`: the hash cache's, for a file)."""
        info = tree_item.stat
        mode = stat.S_IMODE(info.st_mode)
        mtime = EPOCH + timedelta(microseconds=info.st_mtime_ns // 1000)
        if tree_item.kind is EntryKind.DIRECTORY:
            return CapturedItem(tree_item.path, EntryKind.DIRECTORY, 0, mode, mtime, None)
        if tree_item.kind is EntryKind.SYMLINK:
            target = self._read_link(absolute)
            return CapturedItem(
                tree_item.path, EntryKind.SYMLINK, len(target), mode, mtime, partial(io.BytesIO, target)
            )
        return self._file_item(tree_item.path, absolute, info, started_ns, root_id, digest)

    # -- single items, in place (folder/items.py) -------------------------------------------

    def capture_paths(self, paths: Sequence[str]) -> list[CapturedItem]:
        return single_items.capture_paths(self, paths)

    def stage_paths(
        self, chosen: Sequence[tuple[str, Sequence[ManifestEntry]]], open_blob: OpenBlob
    ) -> single_items.FolderStagedItems:
        return single_items.stage_paths(self, chosen, open_blob)

    def clear_paths(self, paths: Sequence[str]) -> None:
        single_items.clear_paths(self, paths)

    def read_back_paths(self, paths: Sequence[str], entries: Sequence[ManifestEntry]) -> bool:
        return single_items.read_back_paths(self, paths, entries)

    def _file_item(
        self, path: str, absolute: str, info: os.stat_result, stat_ns: int, root_id: RootId, digest: str | None = None
    ) -> CapturedItem:
        """A file as this stat (taken at `stat_ns` or later) saw it; it opens only as that file."""
        key = file_key(info)
        return CapturedItem(
            path,
            EntryKind.FILE,
            info.st_size,
            stat.S_IMODE(info.st_mode),
            EPOCH + timedelta(microseconds=info.st_mtime_ns // 1000),
            partial(open_regular_file, absolute, (info.st_dev, info.st_ino)),
            digest=digest,
            on_stored=partial(self._remember, absolute, key, stat_ns) if self._cache else None,
            refresh=partial(self._refresh, path, absolute, root_id),
        )

    def _refresh(self, path: str, absolute: str, root_id: RootId) -> CapturedItem:
        """The file again, from a new stat, after it changed while it was read (its root
        checked again first: never read through a link put there since)."""
        stat_ns = self._clock.time_ns()
        self._same_root(root_id)
        info = os.lstat(absolute)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(f"{absolute} is no longer a regular file")
        return self._file_item(path, absolute, info, stat_ns, root_id)

    def _read_link(self, absolute: str) -> bytes:
        try:
            return os.fsencode(os.readlink(absolute))
        except OSError as error:
            raise OperationFailed(
                OperationErrorCode.SOURCE_UNAVAILABLE,
                f"source {self.name!r}: cannot read link {absolute}: {_reason(error)}",
            ) from error

    def _remember(self, absolute: str, key: FileKey, hashed_at_ns: int, digest: str) -> None:
        """After a file was read and stored: cache its digest if it did not change meanwhile."""
        assert self._cache is not None
        try:
            now = file_key(os.lstat(absolute))
        except OSError:
            return
        if now == key:
            self._cache.remember(absolute, key, digest, hashed_at_ns=hashed_at_ns)

    def _describe(self) -> SourceInfo:
        location = str(self.path)
        try:
            root, root_id = self._root()
        except OperationFailed as failure:
            problem = failure.message.split(": ", 1)[-1]
            return SourceInfo(self.name, self.kind, False, None, location=location, problem=problem)
        counts = {EntryKind.FILE: 0, EntryKind.DIRECTORY: 0, EntryKind.SYMLINK: 0}
        size = 0
        try:
            for item in walk_tree(root, self.filter).managed:
                assert item.kind is not None
                counts[item.kind] += 1
                if item.kind is EntryKind.FILE:
                    size += item.stat.st_size
                elif item.kind is EntryKind.SYMLINK:
                    size += item.stat.st_size  # a link's size is its target's length
        except OSError as error:
            return SourceInfo(
                self.name,
                self.kind,
                False,
                None,
                location=location,
                problem=f"cannot read {error.filename or root}: {_reason(error)}",
            )
        try:
            self._same_root(root_id)
        except OperationFailed as failure:
            problem = failure.message.split(": ", 1)[-1]
            return SourceInfo(self.name, self.kind, False, None, location=location, problem=problem)
        detail = (
            f"{counts[EntryKind.FILE]} files, {counts[EntryKind.DIRECTORY]} folders, "
            f"{counts[EntryKind.SYMLINK]} links" + ("; checks every file's content" if self.full_verify else "")
        )
        return SourceInfo(self.name, self.kind, True, size, detail=detail, location=location)


class StagedFolder:
    """A folder source's new tree, built beside the folder and checked, not yet swapped in."""

    def __init__(
        self,
        source: FolderSource,
        staged: StagedTree,
        started_ns: int,
        relinked: Mapping[str, tuple[FileKey, str]],
    ) -> None:
        self._source = source
        self._staged = staged
        self._started_ns = started_ns
        self._relinked = relinked
        self._replaced: list[Path] = []
        self._committed: dict[str, FileKey] | None = None
        self.kept = len(relinked)

    async def commit(self) -> None:
        """Swap the new tree in (what the globs leave out is carried over into it first)."""
        self._committed = await asyncio.to_thread(
            self._source._commit, self._staged, self._started_ns, self._relinked, self._replaced.append
        )

    async def read_back(self, entries: Sequence[ManifestEntry]) -> bool:
        """After `commit`: whether the folder still holds `entries` (see FolderSource._read_back)."""
        return await asyncio.to_thread(self._source._read_back, entries, self._committed or {})

    async def tidy(self) -> None:
        """Start deleting the tree the commit replaced, in the background."""
        replaced, self._replaced = self._replaced, []
        for old in replaced:
            self._source._remove_old(old, self._staged, self._started_ns, self._relinked)

    async def discard(self) -> None:
        await asyncio.to_thread(remove_tree, self._staged.stage)


def open_regular_file(path: str, walked: tuple[int, int] | None = None) -> BinaryIO:
    """Open for reading without following a link or blocking on a FIFO put there since;
    with `walked` (st_dev, st_ino), only the very file the walk saw: another one at its
    path (a file replaced, or a folder on the path swapped for a link) raises ItemChanged."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise OSError(f"{path} is no longer a regular file")
    if walked is not None and (info.st_dev, info.st_ino) != walked:
        os.close(fd)
        raise ItemChanged(path)
    # Unbuffered: every read asks for what it needs already (a small file whole, a big one
    # in chunks), and a buffered reader cost more system calls per small file.
    return os.fdopen(fd, "rb", buffering=0)


def _hash_file(absolute: str, walked: os.stat_result) -> str | None:
    """The SHA-256 of the very file the walk saw; None if it is gone or another one."""
    hasher = hashlib.sha256()
    try:
        with open_regular_file(absolute, (walked.st_dev, walked.st_ino)) as file:
            while chunk := file.read(1024 * 1024):
                hasher.update(chunk)
    except (OSError, ItemChanged):
        return None
    return hasher.hexdigest()


def _reason(error: OSError) -> str:
    return error.strerror or str(error)
