"""Put a folder tree back from manifest entries: stage it beside the target, then swap.

The whole new tree is built in a hidden folder next to the target (same parent, so the
same filesystem), then swapped in with one rename: a reader sees the old tree or the new
one, never a mix. Items the source does not manage (excluded by its globs) are carried over
into the new tree as hard links. If a run stops part-way, the next run cleans up first:
a leftover staging folder is removed, and a target that a crash left missing between the
two renames of the fallback swap is put back. So applying again from the start is safe.

Building (`stage_tree`, which checks every blob's SHA-256 as it copies it, see
tree_build.py) and swapping in (`commit_tree`) are separate steps, so an apply can build
every source's new state, and find any damaged content, before it changes anything.
Everything here blocks: call it in a thread.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from server.model.errors import OperationErrorCode, OperationFailed
from server.model.records import EntryKind, ManifestEntry
from server.sources.base import OpenBlob
from server.sources.folder.root import open_parent
from server.sources.folder.stage.build import build_tree, ns_since_epoch
from server.sources.folder.stage.carry import carry_unmanaged
from server.sources.folder.stage.reuse import LiveFiles
from server.sources.folder.stage.trash import remove_tree, take_out, trash_name
from server.sources.folder.walk import PathFilter, TreeItem, walk_tree
from server.storage.durability import flush_files, fsync_path


def side_paths(root: Path) -> tuple[Path, Path]:
    """The hidden staging folder and the old-tree folder beside `root`."""
    return root.parent / f".{root.name}.backups-stage", root.parent / f".{root.name}.backups-old"


@dataclass(frozen=True, slots=True)
class StagedTree:
    """A new tree built and checked in its staging folder, not yet swapped in."""

    root: Path
    stage: Path
    old: Path
    planned: list[ManifestEntry]
    kept: frozenset[str] = frozenset()  # paths hard-linked from the live tree (tree_reuse.py)


def apply_tree(
    root: Path,
    entries: Sequence[ManifestEntry],
    open_blob: OpenBlob,
    path_filter: PathFilter,
    *,
    exchange: bool = True,
) -> list[tuple[ManifestEntry, os.stat_result]]:
    """Make the folder `root` hold exactly `entries` (plus what the source does not manage)."""
    return commit_tree(stage_tree(root, entries, open_blob), path_filter, exchange=exchange)


def stage_tree(
    root: Path,
    entries: Sequence[ManifestEntry],
    open_blob: OpenBlob,
    *,
    on_bytes: Callable[[int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    live: LiveFiles | None = None,
) -> StagedTree:
    """Build the new tree beside `root`, checking every file's SHA-256 as it is written;
    `root` itself is not touched. On any failure nothing is left behind. With `live`, files
    the live tree already holds as they should be are linked, not written."""
    planned = check_entries(entries)
    stage, old = side_paths(root)
    recover(root, stage, old)
    if os.path.lexists(root) and (root.is_symlink() or not root.is_dir()):
        raise OperationFailed(OperationErrorCode.APPLY_FAILED, f"{root} is not a folder")
    if root.is_dir() and os.path.ismount(root):
        raise OperationFailed(OperationErrorCode.APPLY_FAILED, f"{root} is a mount point: it cannot be swapped")
    root.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.mkdir(stage, 0o700)
        keep = live.keep if live is not None and root.is_dir() else None
        build_tree(stage, planned, open_blob, on_bytes=on_bytes, should_stop=should_stop, keep=keep)
    except BaseException:
        remove_tree(stage)
        raise
    kept = frozenset(live.relinked) if keep is not None and live is not None else frozenset()
    return StagedTree(root, stage, old, planned, kept)


def commit_tree(
    staged: StagedTree,
    path_filter: PathFilter,
    *,
    exchange: bool = True,
    remove: Callable[[Path], None] = remove_tree,
    check: Callable[[], object] | None = None,
) -> list[tuple[ManifestEntry, os.stat_result]]:
    """Carry over what the source does not manage, finish modes and mtimes, flush, swap;
    then hand the old tree to `remove` (e.g. tree_trash.remove_in_background).

    Returns each file entry written from the store (not kept) with its stat as staged, taken
    once nothing more is done to it (for the hash cache and the read-back: the keys stay
    valid across the swap, which renames only `root`); a kept file's stat after its link is
    in the LiveFiles that kept it, and nothing here changes it again.
    `check` runs first and again right before the swap (the root's checks, tree_root.py).
    """
    root, stage, planned = staged.root, staged.stage, staged.planned
    try:
        if check is not None:
            check()
        current = walk_tree(root, path_filter) if root.is_dir() else None
        carried = carry_unmanaged(root, stage, current.unmanaged) if current else []
        _finish_metadata(stage, planned, carried, root, staged.kept)
        prefix = f"{stage}/"  # strings: a Path per entry cost more than its lstat
        kept = staged.kept
        written = [(e, os.lstat(prefix + e.path)) for e in planned if e.kind is EntryKind.FILE and e.path not in kept]
        # Everything staged reaches the disk before the swap makes it the live tree: one
        # filesystem flush, not an fsync per file and folder (see server/storage/durability.py).
        # Without syncfs the kept files are flushed too: their new names are in new folders.
        flush_files(
            stage,
            (stage / e.path for e in planned if e.kind is EntryKind.FILE),
            folders=[stage, *(stage / e.path for e in planned if e.kind is EntryKind.DIRECTORY)],
        )
        if check is not None:
            check()
    except BaseException:
        remove_tree(stage)
        raise
    try:
        trash = _swap(root, stage, staged.old, exchange)
    except OperationFailed:  # refused before any rename: the staged tree is of no use now
        remove_tree(stage)
        raise
    if trash is not None:
        remove(trash)
    return written


def check_entries(entries: Sequence[ManifestEntry]) -> list[ManifestEntry]:
    """Refuse unsafe or contradictory entries before anything is written; sorted by path."""
    by_path: dict[str, ManifestEntry] = {}
    for entry in entries:
        parts = entry.path.split("/")
        if entry.path.startswith("/") or "\0" in entry.path or any(p in ("", ".", "..") for p in parts):
            raise OperationFailed(OperationErrorCode.INVALID_ENTRY, f"unsafe path {entry.path!r} in the restore point")
        if entry.path in by_path:
            raise OperationFailed(
                OperationErrorCode.INVALID_ENTRY, f"{entry.path!r} appears twice in the restore point"
            )
        if entry.kind is not EntryKind.DIRECTORY and entry.sha256 is None:
            raise OperationFailed(OperationErrorCode.INVALID_ENTRY, f"{entry.path!r} has no content")
        by_path[entry.path] = entry
    for path in by_path:
        parts = path.split("/")
        for depth in range(1, len(parts)):
            parent = by_path.get("/".join(parts[:depth]))
            if parent is not None and parent.kind is not EntryKind.DIRECTORY:
                raise OperationFailed(
                    OperationErrorCode.INVALID_ENTRY, f"{path!r} lies inside {parent.path!r}, which is not a folder"
                )
    return [by_path[path] for path in sorted(by_path)]


def recover(root: Path, stage: Path, old: Path) -> None:
    """Undo what an interrupted run left: the old tree back in place, no side folders."""
    take_out(root)
    if not os.path.lexists(root) and old.is_dir() and not old.is_symlink():
        os.rename(old, root)  # the crash hit between the two renames of the fallback swap
        fsync_path(root.parent)
    remove_tree(stage)
    remove_tree(old)


def _finish_metadata(
    stage: Path, planned: list[ManifestEntry], carried: list[TreeItem], root: Path, kept: frozenset[str]
) -> None:
    """Modes and mtimes of links, then folders deepest first (writing inside a folder
    changes its mtime, and a read-only folder must be finished last). Files got theirs
    as they were written (tree_build.py)."""
    folders: dict[str, tuple[int, int | None]] = {}
    for entry in planned:
        mtime_ns = ns_since_epoch(entry.mtime)
        if entry.kind is EntryKind.DIRECTORY:
            folders[entry.path] = (entry.mode, mtime_ns)
        elif entry.kind is EntryKind.SYMLINK and mtime_ns is not None and os.utime in os.supports_follow_symlinks:
            os.utime(stage / entry.path, ns=(mtime_ns, mtime_ns), follow_symlinks=False)
    for item in carried:
        folders.setdefault(item.path, (item.stat.st_mode, item.stat.st_mtime_ns))
    for entry in planned:  # folders made only as parents get ordinary permissions
        parts = entry.path.split("/")
        for depth in range(1, len(parts)):
            folders.setdefault("/".join(parts[:depth]), (0o755, None))
    if os.geteuid() == 0 and root.is_dir():
        # A kept file has its owner already, and a chown would move its ctime again.
        _keep_owners(stage, root, [entry.path for entry in planned if entry.path not in kept])
    for path in sorted(folders, key=lambda p: p.count("/"), reverse=True):
        mode, mtime_ns = folders[path]
        os.chmod(stage / path, stat.S_IMODE(mode))
        if mtime_ns is not None:
            os.utime(stage / path, ns=(mtime_ns, mtime_ns))
    os.chmod(stage, stat.S_IMODE(os.stat(root).st_mode) if root.is_dir() else 0o755)


def _keep_owners(stage: Path, root: Path, paths: list[str]) -> None:
    """Running as root, new files would belong to root: give each the owner its path has
    now, or else its folder's owner (ownership is not part of a restore point)."""
    # Everything staged was made by this process (in folders without the setgid bit: modes
    # come after owners), so it belongs to the effective user and group: only other owners
    # need a chown, which spares one system call per file in the common case.
    made_by_us = (os.geteuid(), os.getegid())
    top = os.stat(root)
    os.chown(stage, top.st_uid, top.st_gid)
    live, staged = f"{root}/", f"{stage}/"
    for path in paths:  # sorted: a folder comes before what it holds
        try:
            info = os.lstat(live + path)
        except FileNotFoundError:
            info = os.lstat(os.path.dirname(staged + path))
        if (info.st_uid, info.st_gid) != made_by_us:
            os.chown(staged + path, info.st_uid, info.st_gid, follow_symlinks=False)


def _swap(root: Path, stage: Path, old: Path, exchange: bool) -> Path | None:
    """Put the staged tree in place; returns where the old tree now is (None: there was none).

    The renames run in the parent folder opened without following links, each after an
    lstat of `root` there: a link put in place of the root since it was checked is never
    followed, so the swap cannot replace a folder outside the tree (tree_root.py)."""
    parent = open_parent(root)
    try:
        name = root.name
        outgoing: str | None = None
        if not _lexists_at(parent, name):
            os.rename(stage.name, name, src_dir_fd=parent, dst_dir_fd=parent)
        else:
            _must_be_folder(parent, root)
            if exchange and _exchange(parent, stage.name, name):
                outgoing = stage.name  # it now holds the old tree
            else:
                os.rename(name, old.name, src_dir_fd=parent, dst_dir_fd=parent)
                os.rename(stage.name, name, src_dir_fd=parent, dst_dir_fd=parent)  # a crash here: recover()
                outgoing = old.name
        os.fsync(parent)
        if outgoing is None:
            return None
        trash = trash_name(root)
        # Under a name no later apply uses until the trash is taken out.
        os.rename(outgoing, trash.name, src_dir_fd=parent, dst_dir_fd=parent)
        return trash
    finally:
        os.close(parent)


def _lexists_at(parent: int, name: str) -> bool:
    try:
        os.lstat(name, dir_fd=parent)
    except FileNotFoundError:
        return False
    return True


def _must_be_folder(parent: int, root: Path) -> None:
    if not stat.S_ISDIR(os.lstat(root.name, dir_fd=parent).st_mode):
        raise OperationFailed(
            OperationErrorCode.SOURCE_UNAVAILABLE, f"path {root} is no longer a folder (links are never followed)"
        )


_libc = ctypes.CDLL(None, use_errno=True)
_renameat2 = getattr(_libc, "renameat2", None)
RENAME_EXCHANGE = 2


def _exchange(parent: int, a: str, b: str) -> bool:
    """Swap two names in one folder atomically (Linux renameat2); False where that is not supported."""
    if _renameat2 is None:
        return False
    if _renameat2(parent, os.fsencode(a), parent, os.fsencode(b), RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), b)
