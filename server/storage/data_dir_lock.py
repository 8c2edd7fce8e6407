"""One server per data folder: an exclusive lock on `<data>/server.lock`, held for the process's life.

The kernel lock (flock) is the truth: it goes when the process dies, however it dies, so a
file left by a killed server never blocks the next one. The pid and host written in the
file are only there to name the other server in the refusal.
"""

from __future__ import annotations

import fcntl
import os
import socket
from pathlib import Path

LOCK_NAME = "server.lock"


class DataDirInUse(Exception):
    """Another live process holds the data folder's lock."""


class DataDirLock:
    """The held lock; it is released when the process exits (or by `release`)."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None


class LockHeld(Exception):
    """The lock file is held by another live process, named by `holder` (its pid and host)."""

    def __init__(self, holder: str) -> None:
        super().__init__(holder)
        self.holder = holder


def lock_data_dir(data_dir: Path) -> DataDirLock:
    """Take the data folder's lock, or raise DataDirInUse naming the process that holds it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / LOCK_NAME
    try:
        return lock_file(path)
    except LockHeld as held:
        raise DataDirInUse(
            f"the data folder {data_dir} is in use by another server ({held.holder}; lock file {path}): "
            "stop it first, or give this one another BACKUPS_DATA_DIR"
        ) from None


def lock_file(path: Path) -> DataDirLock:
    """An exclusive flock on `path` (made if missing) with our pid and host written in it."""
    # O_CLOEXEC: a restart command or other child must not inherit (and so keep) the lock.
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _read_holder(fd)
        os.close(fd)
        raise LockHeld(holder) from None
    except BaseException:
        os.close(fd)
        raise
    # Truncated only once the lock is ours: the holder's pid stays readable to the refused.
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()} on host {socket.gethostname()}\n".encode(), 0)
    return DataDirLock(path, fd)


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode(errors="replace").strip()
    except OSError:
        text = ""
    return text or "pid unknown"
