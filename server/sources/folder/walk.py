"""Walking a folder tree: include/exclude globs, and what a folder source manages.

Globs match POSIX paths relative to the source's folder. A pattern without `/` matches a
name at any depth (`*.tmp`, `.git`); one with `/` is anchored at the folder (`logs/*.log`).
`*` and `?` stay within one path segment, `**` spans any number of segments, `[...]` is a
character class. An excluded folder is skipped whole. Links are never followed.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from server.model.globs import compile_glob
from server.model.records import EntryKind


class PathFilter:
    """Which paths of a tree a source manages: included and not excluded."""

    def __init__(self, include: Sequence[str] = ("**",), exclude: Sequence[str] = ()) -> None:
        self._include = [compile_glob(p) for p in include]
        self._exclude = [compile_glob(p) for p in exclude]
        # The default (`**`, nothing excluded) answers without a match per path: a walk
        # asks twice for each of tens of thousands of files.
        self._everything = any(p.strip().rstrip("/") == "**" for p in include)

    def excluded(self, rel: str) -> bool:
        return bool(self._exclude) and any(p.fullmatch(rel) for p in self._exclude)

    def included(self, rel: str) -> bool:
        return self._everything or any(p.fullmatch(rel) for p in self._include)


@dataclass(frozen=True, slots=True)
class TreeItem:
    path: str  # relative, POSIX
    kind: EntryKind | None  # None: a special file (FIFO, socket, device), never captured
    stat: os.stat_result


@dataclass
class TreeListing:
    """A walk's result: the items the source manages, and those it leaves alone."""

    managed: list[TreeItem] = field(default_factory=list)
    # Not captured, so kept as they are when a restore point is applied: items the globs
    # leave out, and excluded folders (listed once, standing for their whole subtree).
    unmanaged: list[TreeItem] = field(default_factory=list)


def walk_tree(root: Path, path_filter: PathFilter) -> TreeListing:
    """Every item under `root` in sorted pre-order; links are listed, never followed.

    A folder is managed when the include globs match it or anything managed lies inside it,
    so empty folders are kept with the default `**`. Blocking: call it in a thread.
    """
    listing = TreeListing()
    _walk(str(root), "", path_filter, listing)
    return listing


def _walk(folder: str, rel_folder: str, path_filter: PathFilter, listing: TreeListing) -> None:
    with os.scandir(folder) as scan:
        children = sorted(scan, key=lambda child: child.name)
    for child in children:
        rel = f"{rel_folder}/{child.name}" if rel_folder else child.name
        info = child.stat(follow_symlinks=False)
        kind = _kind(info.st_mode)
        if kind is EntryKind.DIRECTORY:
            if path_filter.excluded(rel):
                listing.unmanaged.append(TreeItem(rel, kind, info))
                continue
            mark = len(listing.managed)
            listing.managed.append(TreeItem(rel, kind, info))
            _walk(child.path, rel, path_filter, listing)
            if len(listing.managed) == mark + 1 and not path_filter.included(rel):
                listing.managed.pop()  # nothing managed inside, and not included itself
                listing.unmanaged.append(TreeItem(rel, kind, info))
        elif kind is not None and path_filter.included(rel) and not path_filter.excluded(rel):
            listing.managed.append(TreeItem(rel, kind, info))
        else:
            listing.unmanaged.append(TreeItem(rel, kind, info))


_KINDS = {stat.S_IFDIR: EntryKind.DIRECTORY, stat.S_IFREG: EntryKind.FILE, stat.S_IFLNK: EntryKind.SYMLINK}


def _kind(mode: int) -> EntryKind | None:
    return _KINDS.get(stat.S_IFMT(mode))
