"""Making many new files durable at once: one filesystem flush instead of an fsync each.

An fsync costs a journal commit (milliseconds here), so tens of thousands of small files
written one fsync at a time took a minute and a half. Writers that put many files in place
write them all, then call `flush_files` once before the step that makes them count (a
restore point recorded, a staged tree swapped in). A big file's pages can be sent on their
way while it is still being written (`start_writeback`), so that the flush has less left.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterable
from pathlib import Path

try:
    _LIBC: ctypes.CDLL | None = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover - platforms without a C library to load
    _LIBC = None
_SYNC_FILE_RANGE_WRITE = 2


def syncfs(folder: Path) -> bool:
    """Flush the whole filesystem holding `folder` (Linux syncfs); False where unavailable."""
    call = getattr(_LIBC, "syncfs", None) if _LIBC is not None else None
    if call is None:
        return False
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if call(fd) != 0:
            error = ctypes.get_errno()
            raise OSError(error, os.strerror(error), str(folder))
    finally:
        os.close(fd)
    return True


def start_writeback(fd: int, offset: int, length: int) -> bool:
    """Start writing a range of a file to disk without waiting (Linux sync_file_range); False
    where unavailable or refused. An fsync later then waits only for what is left."""
    call = getattr(_LIBC, "sync_file_range", None) if _LIBC is not None else None
    if call is None:
        return False
    # Only a head start: a failure here is the fsync's to report, with the data it concerns.
    return bool(call(fd, ctypes.c_int64(offset), ctypes.c_int64(length), _SYNC_FILE_RANGE_WRITE) == 0)


def write_all(fd: int, data: bytes) -> None:
    """Write all of `data` to the descriptor (os.write may take only part of it)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def fsync_path(path: Path, flags: int = os.O_RDONLY) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def flush_files(folder: Path, files: Iterable[Path], folders: Iterable[Path] = ()) -> None:
    """Make `files` (all under `folder`'s filesystem), their folder entries and `folders`
    durable. Lazy iterables are fine: with syncfs they are never walked."""
    if syncfs(folder):
        return
    files = list(files)
    for file in files:
        fsync_path(file)
    for parent in {file.parent for file in files} | set(folders):
        fsync_path(parent, os.O_RDONLY | os.O_DIRECTORY)
