"""Checking a folder source's root each time it is used, not only at start-up.

The configured path was resolved (links followed) when the config was read, so any link
on it now was put there since: `rm -r X; ln -s $BACKUPS_DATA_DIR X` must not make an apply
replace the data folder, nor a capture read another folder. So every operation checks,
just before it reads or writes, that no component of the path is a link, that the root is
a real folder, and that it does not overlap the folders the server keeps its own data in;
the swap of an apply re-checks right before its renames, which run in the parent folder
opened without following links (stage/swap.py). Blocking: call it in a thread.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

from server.model.errors import OperationErrorCode, OperationFailed

# (what, folder): folders a source may never be inside of nor contain, e.g. the data folder.
Protected = Sequence[tuple[str, Path]]
RootId = tuple[int, int]  # (st_dev, st_ino) of the root folder as checked


def check_root(name: str, path: Path, protected: Protected = (), *, missing_ok: bool = False) -> RootId | None:
    """The root's identity; OperationFailed(SOURCE_UNAVAILABLE) naming the source when a
    part of the path is a link now, the root is not a folder, or it overlaps a protected
    folder. With `missing_ok`, a missing root (an apply creates it) gives None."""
    problem, found = _problem(path, protected, missing_ok)
    if problem is not None:
        raise OperationFailed(OperationErrorCode.SOURCE_UNAVAILABLE, f"source {name!r}: {problem}")
    return found


def _problem(path: Path, protected: Protected, missing_ok: bool) -> tuple[str | None, RootId | None]:
    for part in reversed(path.parents[:-1]):  # from the top down, without the filesystem root
        try:
            info = os.lstat(part)
        except FileNotFoundError:
            return (None, None) if missing_ok else (f"path {path} does not exist", None)
        if stat.S_ISLNK(info.st_mode):
            return f"{part} on the path {path} is now a link to {os.readlink(part)} (links are never followed)", None
        if not stat.S_ISDIR(info.st_mode):
            return f"{part} on the path {path} is not a folder", None
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return (None, None) if missing_ok else (f"path {path} does not exist", None)
    if stat.S_ISLNK(info.st_mode):
        return f"path {path} is now a link to {os.readlink(path)} (links are never followed)", None
    if not stat.S_ISDIR(info.st_mode):
        return f"path {path} is not a folder", None
    for what, folder in protected:
        real = Path(os.path.realpath(folder))
        if path == real or path.is_relative_to(real) or real.is_relative_to(path):
            return f"path {path} overlaps {what} {folder}", None
    if not os.access(path, os.R_OK | os.X_OK):
        return f"path {path} is not readable", None
    return None, (info.st_dev, info.st_ino)


def open_parent(path: Path) -> int:
    """A descriptor of the root's parent folder, opened without following a link at its
    last step (check_root, just before, found none above it): renames made through it
    cannot be redirected by a link put on the path later."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    return os.open(path.parent, flags)
