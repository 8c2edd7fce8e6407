"""Put back single items of a folder in place, at the items' own size: not the whole tree.

A chosen file (or link) is written beside its target under a hidden name (its SHA-256
checked as it is written, then flushed) and renamed over it: a reader sees the old file or
the new one. A chosen folder is built beside it (stage_tree: the same checked build as a
whole apply) and swapped in with its renames, the old version going to the trash. An item
the new state does not have is moved to the trash. Staging and committing are separate
steps, so every item is staged (and any damaged content found) before anything changes.

Every step is idempotent and its hidden names are fixed by the target's name, so a run
killed anywhere can simply put the same items again (`put_items`): leftovers are removed
first (`clear_leftovers`), and a folder missing between the two renames of a swap is first
put back by stage_tree's recovery. Everything here blocks: call it in a thread.
"""

from __future__ import annotations

import dataclasses
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from server.model.errors import OperationErrorCode, OperationFailed
from server.model.items import is_under
from server.model.records import EntryKind, ManifestEntry
from server.sources.base import OpenBlob
from server.sources.folder.stage.build import build_tree, ns_since_epoch
from server.sources.folder.stage.swap import StagedTree, check_entries, commit_tree, side_paths, stage_tree
from server.sources.folder.stage.trash import remove_in_background, remove_tree, take_out, trash_name
from server.sources.folder.walk import PathFilter
from server.storage.durability import fsync_path

ITEM_SUFFIX = ".backups-item"


class SubFilter(PathFilter):
    """A source's globs, asked about paths relative to one of its folders."""

    def __init__(self, inner: PathFilter, prefix: str) -> None:  # noqa: D107 - no parent init: it only wraps
        self._inner = inner
        self._prefix = prefix.rstrip("/") + "/"

    def excluded(self, rel: str) -> bool:
        return self._inner.excluded(self._prefix + rel)

    def included(self, rel: str) -> bool:
        return self._inner.included(self._prefix + rel)


def item_temp(target: Path) -> Path:
    """The hidden name a file or link is staged under, beside its target."""
    return target.parent / f".{target.name}{ITEM_SUFFIX}"


@dataclass(slots=True)
class StagedItem:
    """One item ready to go in: `temp` (a file or link) or `tree` (a folder); neither: the
    item goes (moved to the trash)."""

    target: Path
    path: str  # as the manifest has it
    temp: Path | None = None
    tree: StagedTree | None = None
    top: ManifestEntry | None = None  # the item's own entry (a folder's mode and mtime)

    def discard(self) -> None:
        if self.temp is not None:
            remove_tree(self.temp)
        if self.tree is not None:
            remove_tree(self.tree.stage)


def clear_leftovers(root: Path, paths: Sequence[str]) -> None:
    """Remove what a run stopped part-way left beside these items: staged files and folders,
    and trash (a folder missing between a swap's two renames is put back first)."""
    for path in paths:
        target = root / path
        if not target.parent.is_dir():
            continue
        remove_tree(item_temp(target))
        stage, old = side_paths(target)
        if not os.path.lexists(target) and old.is_dir() and not old.is_symlink():
            os.rename(old, target)
            fsync_path(target.parent)
        remove_tree(stage)
        remove_tree(old)
        take_out(target)


def stage_items(
    root: Path, chosen: Sequence[tuple[str, Sequence[ManifestEntry]]], open_blob: OpenBlob
) -> list[StagedItem]:
    """Stage every chosen item (path -> the entries it should hold: it and what is under it,
    source-relative paths; none: it goes). On any failure nothing staged is left."""
    staged: list[StagedItem] = []
    try:
        for path, entries in chosen:
            try:
                staged.append(_stage_one(root, path, entries, open_blob))
            except OperationFailed as failure:
                raise OperationFailed(failure.code, f"item {path!r}: {failure.message}") from None
    except BaseException:
        for item in staged:
            item.discard()
        raise
    return staged


def _stage_one(root: Path, path: str, entries: Sequence[ManifestEntry], open_blob: OpenBlob) -> StagedItem:
    target = root / path
    _check_parents(root, path)
    check_entries(entries)
    top = next((entry for entry in entries if entry.path == path), None)
    if top is None:
        return StagedItem(target, path)
    if top.kind is EntryKind.DIRECTORY:
        inner = [_relative(entry, path) for entry in entries if entry.path != path]
        if os.path.lexists(target) and (target.is_symlink() or not target.is_dir()):
            # A file stands where the folder goes: the folder is built beside it all the
            # same, and the file goes to the trash at the commit.
            tree = _stage_beside(target, inner, open_blob)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            tree = stage_tree(target, inner, open_blob)
        return StagedItem(target, path, tree=tree, top=top)
    temp = item_temp(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_tree(temp)
    built = temp.parent / f".{target.name}.backups-itemdir"
    remove_tree(built)
    os.mkdir(built, 0o700)
    try:
        single = dataclasses.replace(top, path=target.name)
        build_tree(built, [single], open_blob, workers=1)
        made = built / target.name
        if single.kind is EntryKind.SYMLINK:
            mtime_ns = ns_since_epoch(single.mtime)
            if mtime_ns is not None and os.utime in os.supports_follow_symlinks:
                os.utime(made, ns=(mtime_ns, mtime_ns), follow_symlinks=False)
        else:
            fsync_path(made)
        os.rename(made, temp)
    finally:
        remove_tree(built)
    return StagedItem(target, path, temp=temp)


def _stage_beside(target: Path, inner: list[ManifestEntry], open_blob: OpenBlob) -> StagedTree:
    stage, old = side_paths(target)
    remove_tree(stage)
    os.mkdir(stage, 0o700)
    try:
        build_tree(stage, check_entries(inner), open_blob)
    except BaseException:
        remove_tree(stage)
        raise
    return StagedTree(target, stage, old, check_entries(inner))


def commit_item(item: StagedItem, path_filter: PathFilter, parents: Sequence[ManifestEntry] = ()) -> None:
    """Rename a staged item over its target (its missing parent folders made first, with
    the modes `parents` gives them), and flush its folder."""
    modes = {entry.path: entry.mode for entry in parents if entry.kind is EntryKind.DIRECTORY}
    _make_parents(item.target, item.path, modes)
    if item.tree is not None:
        if os.path.lexists(item.target) and (item.target.is_symlink() or not item.target.is_dir()):
            _to_trash(item.target)
        commit_tree(item.tree, SubFilter(path_filter, item.path), remove=remove_in_background)
        if item.top is not None:
            _finish_folder(item.target, item.top)
    elif item.temp is not None:
        if item.target.is_dir() and not item.target.is_symlink():
            _to_trash(item.target)
        elif os.geteuid() == 0 and os.path.lexists(item.target):
            now = os.lstat(item.target)  # ownership is not in a restore point: keep the file's
            os.chown(item.temp, now.st_uid, now.st_gid, follow_symlinks=False)
        os.replace(item.temp, item.target)
    elif os.path.lexists(item.target):
        _to_trash(item.target)
    fsync_path(item.target.parent)


def _check_parents(root: Path, path: str) -> None:
    """Every folder above the item is a folder or missing: never a link (followed, a write
    would land outside the tree) nor a file."""
    parts = path.split("/")
    for depth in range(1, len(parts)):
        folder = root.joinpath(*parts[:depth])
        try:
            info = os.lstat(folder)
        except FileNotFoundError:
            return
        if not stat.S_ISDIR(info.st_mode):
            raise OperationFailed(
                OperationErrorCode.APPLY_FAILED,
                f"{'/'.join(parts[:depth])!r} is no longer a folder (links are never followed)",
            )


def _make_parents(target: Path, path: str, modes: dict[str, int]) -> None:
    parts = path.split("/")
    root = target
    for _ in parts:
        root = root.parent
    _check_parents(root, path)
    for depth in range(1, len(parts)):
        folder = root.joinpath(*parts[:depth])
        if not os.path.lexists(folder):
            os.mkdir(folder, stat.S_IMODE(modes.get("/".join(parts[:depth]), 0o755)))


def _finish_folder(target: Path, top: ManifestEntry) -> None:
    os.chmod(target, stat.S_IMODE(top.mode))
    mtime_ns = ns_since_epoch(top.mtime)
    if mtime_ns is not None:
        os.utime(target, ns=(mtime_ns, mtime_ns))


def _to_trash(target: Path) -> None:
    trash = trash_name(target)
    os.rename(target, trash)
    remove_in_background(trash)


def _relative(entry: ManifestEntry, folder: str) -> ManifestEntry:
    if not is_under(entry.path, folder):
        raise OperationFailed(OperationErrorCode.INVALID_ENTRY, f"{entry.path!r} is not inside {folder!r}")
    return dataclasses.replace(entry, path=entry.path[len(folder) + 1 :])
