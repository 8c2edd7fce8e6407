"""A folder source's single items: captured, staged, put back and read back by their paths
alone, so that putting back one file costs that file, not the tree (see stage/items.py).

Only the chosen paths (what is under a chosen folder, and the folders above them) are
walked; a file the hash cache vouches for is not read. Everything here blocks.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Sequence
from typing import TYPE_CHECKING

from server.model.records import EntryKind, ManifestEntry
from server.sources.base import CapturedItem, OpenBlob
from server.sources.folder.hash_cache import file_key
from server.sources.folder.stage.items import StagedItem, SubFilter, clear_leftovers, commit_item, stage_items
from server.sources.folder.walk import TreeItem, walk_tree

if TYPE_CHECKING:
    from server.sources.folder.source import FolderSource


def _kind(mode: int) -> EntryKind | None:
    return {stat.S_IFDIR: EntryKind.DIRECTORY, stat.S_IFREG: EntryKind.FILE, stat.S_IFLNK: EntryKind.SYMLINK}.get(
        stat.S_IFMT(mode)
    )


def walk_paths(source: FolderSource, paths: Sequence[str]) -> list[TreeItem]:
    """The folders above each path, each path itself and what is under it (source-relative,
    parents first, no item twice); a missing path yields nothing."""
    root = str(source.path).rstrip("/") + "/"
    found: dict[str, TreeItem] = {}
    for path in paths:
        parts = path.split("/")
        for depth in range(1, len(parts) + 1):
            rel = "/".join(parts[:depth])
            if rel in found:
                continue
            try:
                info = os.lstat(root + rel)
            except (FileNotFoundError, NotADirectoryError):
                break
            kind = _kind(info.st_mode)
            if kind is None or (depth < len(parts) and kind is not EntryKind.DIRECTORY):
                break
            found[rel] = TreeItem(rel, kind, info)
        top = found.get(path)
        if top is not None and top.kind is EntryKind.DIRECTORY:
            for inner in walk_tree(source.path / path, SubFilter(source.filter, path)).managed:
                found.setdefault(f"{path}/{inner.path}", TreeItem(f"{path}/{inner.path}", inner.kind, inner.stat))
    return [found[rel] for rel in sorted(found, key=lambda p: p.split("/"))]


def capture_paths(source: FolderSource, paths: Sequence[str]) -> list[CapturedItem]:
    """Like a capture, of these paths only (walk_paths)."""
    started_ns = source._clock.time_ns()  # noqa: SLF001 - this module is the source's own
    root, root_id = source._root()  # noqa: SLF001
    walked = walk_paths(source, paths)
    source._same_root(root_id)  # noqa: SLF001
    prefix = str(root).rstrip("/") + "/"
    known = _known(source, prefix, walked)
    items: list[CapturedItem] = []
    for tree_item in walked:
        absolute = prefix + tree_item.path
        items.append(source.captured_item(tree_item, absolute, started_ns, root_id, known.get(absolute)))
    return items


def _known(source: FolderSource, prefix: str, walked: Sequence[TreeItem]) -> dict[str, str]:
    """The cache's digests of the walked files whose stat it still matches."""
    cache = source._cache  # noqa: SLF001
    files = [item for item in walked if item.kind is EntryKind.FILE]
    if cache is None or not files:
        return {}
    folders = {os.path.dirname(prefix + item.path) for item in files}
    rows: dict[str, tuple[object, str]] = {}
    for folder in folders:
        rows.update(cache.known(folder))
    hints: dict[str, str] = {}
    for item in files:
        hint = rows.get(prefix + item.path)
        if hint is not None and hint[0] == file_key(item.stat):
            hints[prefix + item.path] = hint[1]
    return hints


def read_back_paths(source: FolderSource, paths: Sequence[str], entries: Sequence[ManifestEntry]) -> bool:
    """Whether the items at `paths` (and under them) are exactly `entries` there (mtimes aside)."""
    from server.model.items import is_under

    prefix = str(source.path).rstrip("/") + "/"
    walked = [item for item in walk_paths(source, paths) if any(is_under(item.path, p) for p in paths)]
    wanted = {entry.path: entry for entry in entries if any(is_under(entry.path, p) for p in paths)}
    if len(walked) != len(wanted):
        return False
    for item in walked:
        entry = wanted.get(item.path)
        if entry is None or entry.kind is not item.kind or entry.mode != stat.S_IMODE(item.stat.st_mode):
            return False
        if item.kind is EntryKind.DIRECTORY:
            continue
        absolute = prefix + item.path
        digest: str | None
        if item.kind is EntryKind.SYMLINK:
            target = os.fsencode(os.readlink(absolute))
            size, digest = len(target), hashlib.sha256(target).hexdigest()
        else:
            size, digest = item.stat.st_size, _hash(absolute)
        if size != entry.size or digest != entry.sha256:
            return False
    return True


def _hash(absolute: str) -> str | None:
    from server.sources.folder.source import open_regular_file

    hasher = hashlib.sha256()
    try:
        with open_regular_file(absolute) as file:
            while chunk := file.read(1024 * 1024):
                hasher.update(chunk)
    except OSError:
        return None
    return hasher.hexdigest()


class FolderStagedItems:
    """A folder source's chosen items, staged beside their targets, not yet renamed in."""

    def __init__(self, source: FolderSource, staged: list[StagedItem]) -> None:
        self._source = source
        self._staged = staged

    @property
    def count(self) -> int:
        return len(self._staged)

    def commit(self, parents: Sequence[ManifestEntry], index: int) -> None:
        with self._source.failures(self._source.path):
            commit_item(self._staged[index], self._source.filter, parents)

    def discard(self) -> None:
        for item in self._staged:
            item.discard()


def stage_paths(
    source: FolderSource, chosen: Sequence[tuple[str, Sequence[ManifestEntry]]], open_blob: OpenBlob
) -> FolderStagedItems:
    source._root()  # noqa: SLF001 - refused now if missing, linked or protected
    with source.failures(source.path):
        clear_leftovers(source.path, [path for path, _ in chosen])
        return FolderStagedItems(source, stage_items(source.path, chosen, open_blob))


def clear_paths(source: FolderSource, paths: Sequence[str]) -> None:
    with source.failures(source.path):
        clear_leftovers(source.path, paths)
