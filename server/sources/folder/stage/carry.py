"""Carry what a folder source does not manage into a tree being staged.

Items the globs leave out (logs, caches...) are not part of a restore point, so applying
one must keep them: they are hard-linked into the staged tree (no content is copied, and
a writer of such a file keeps writing to the same file), copied where links cannot be
made. Something the restore point put at the same path wins, and nothing is ever written
through a link the restore point put there. Blocking: runs inside commit_tree's thread.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from pathlib import Path

from server.model.records import EntryKind
from server.sources.folder.walk import TreeItem


def carry_unmanaged(root: Path, stage: Path, unmanaged: list[TreeItem]) -> list[TreeItem]:
    """Hard-link what the source does not manage into the new tree; returns folders made."""
    made: list[TreeItem] = []
    for item in unmanaged:
        target = stage / item.path
        if os.path.lexists(target) or not _inside_real_folders(stage, item.path):
            continue  # the restore point has something there: it wins
        if not _make_carried_parents(root, stage, item.path, made):
            continue
        if item.kind is EntryKind.DIRECTORY:
            _link_tree(root / item.path, target)  # everything inside is unmanaged too
            made.append(item)
        else:
            _link_one(root / item.path, target, item.stat)
    return made


def _inside_real_folders(stage: Path, path: str) -> bool:
    folder = stage
    for part in path.split("/")[:-1]:
        folder = folder / part
        if os.path.lexists(folder) and (folder.is_symlink() or not folder.is_dir()):
            return False  # never write through a link the restore point put there
    return True


def _make_carried_parents(root: Path, stage: Path, path: str, made: list[TreeItem]) -> bool:
    parts = path.split("/")[:-1]
    for depth in range(1, len(parts) + 1):
        rel = "/".join(parts[:depth])
        folder = stage / rel
        if folder.is_dir() and not folder.is_symlink():
            continue
        if os.path.lexists(folder):
            return False
        os.mkdir(folder, 0o700)
        made.append(TreeItem(rel, EntryKind.DIRECTORY, os.lstat(root / rel)))
    return True


def _link_tree(source: Path, target: Path) -> None:
    """Recreate a folder's whole subtree, hard-linking its files (no content is copied)."""
    os.mkdir(target, 0o700)
    try:
        with os.scandir(source) as scan:
            children = list(scan)
    except FileNotFoundError:
        return  # an unmanaged folder may come and go (a cache): take it as it is now
    for child in children:
        try:
            info = child.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue
        if stat.S_ISDIR(info.st_mode):
            _link_tree(Path(child.path), target / child.name)
            _copy_metadata(target / child.name, info)
        else:
            _link_one(Path(child.path), target / child.name, info)


def _link_one(source: Path, target: Path, info: os.stat_result) -> None:
    try:
        os.link(source, target, follow_symlinks=False)
    except FileNotFoundError:
        pass  # gone since the walk
    except OSError as error:
        if error.errno not in (errno.EPERM, errno.EXDEV, errno.EMLINK, errno.ENOTSUP):
            raise
        if stat.S_ISLNK(info.st_mode):
            os.symlink(os.readlink(source), target)
        elif stat.S_ISREG(info.st_mode):
            shutil.copy2(source, target, follow_symlinks=False)


def _copy_metadata(target: Path, info: os.stat_result) -> None:
    os.chmod(target, stat.S_IMODE(info.st_mode))
    os.utime(target, ns=(info.st_atime_ns, info.st_mtime_ns))
