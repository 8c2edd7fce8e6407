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
import re
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from server.model.names import COPY_NAME_MAX_BYTES, shorten_utf8

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


# ---- atomic replacement: one way to put a whole file in place --------------------------------

# Every temp file is `.<target name>.<random>.partial` beside its target: hidden from folder
# listings, and recognisable, so that start-up can remove what a crash left behind.
TEMP_SUFFIX = ".partial"
TEMP_NAME = re.compile(r"\.(?P<target>.+)\.[a-z0-9_]{8}\.partial", re.DOTALL)  # mkstemp: 8 random characters


def temp_prefix(target_name: str) -> str:
    """The start of a temp file's name beside `target_name`: the target's name, cut short if
    needed, so that the temp name fits where the target's name just fits (255 bytes)."""
    return f".{shorten_utf8(target_name, COPY_NAME_MAX_BYTES)}."


def is_temp_name(name: str) -> bool:
    """Whether a file name is one of `atomic_write`'s temp files."""
    return TEMP_NAME.fullmatch(name) is not None


class PendingFile:
    """The temp file of an `atomic_write`: write to `file`; `target` may still be changed."""

    def __init__(self, file: BinaryIO, temp: Path, target: Path) -> None:
        self.file = file
        self.temp = temp
        self.target = target
        self.placed = False

    def placed_at(self, target: Path) -> None:
        """The caller gave the temp file its name itself (say, exclusively under a free name)."""
        self.target = target
        self.placed = True

    def sync(self) -> int:
        """Flush and fsync what is written so far; returns the file's size."""
        self.file.flush()
        os.fsync(self.file.fileno())
        return os.fstat(self.file.fileno()).st_size


@contextmanager
def atomic_write(target: Path, *, buffering: int = -1, exclusive: bool = False) -> Iterator[PendingFile]:
    """Write a file whole or not at all: a temp file (mode 0600) beside `target`, then on
    success fsync, rename over `target` and fsync the folder; on failure the temp is removed.

    `exclusive`: never replace an existing target (FileExistsError instead, nothing kept).
    """
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=temp_prefix(target.name), suffix=TEMP_SUFFIX)
    temp = Path(name)
    try:
        with os.fdopen(fd, "wb", buffering=buffering) as out:
            pending = PendingFile(out, temp, target)
            yield pending
            pending.sync()
        if pending.placed:
            pass
        elif exclusive:
            os.link(temp, pending.target)  # fails if the target exists, unlike a rename
        else:
            os.replace(temp, pending.target)
    finally:
        temp.unlink(missing_ok=True)
    # A rename (or link, or unlink) is durable once its folder is flushed.
    fsync_path(pending.target.parent, os.O_RDONLY | os.O_DIRECTORY)


def write_atomic(target: Path, data: bytes, *, exclusive: bool = False) -> None:
    """Replace `target` with `data`, atomically and durably (see `atomic_write`)."""
    with atomic_write(target, exclusive=exclusive) as pending:
        pending.file.write(data)
