"""A small filesystem of the test's own (tmpfs with a size limit) that a test can fill up."""

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess
import time
from contextlib import closing
from pathlib import Path

FILLER = ".filler"


class SmallDisk:
    """A tmpfs mounted at `path`; `fill()` takes every free byte, `free()` gives them back."""

    def __init__(self, path: Path, size: str) -> None:
        self.path = path
        self.size = size
        self.mounted = False

    def mount(self) -> str | None:
        """Mount it; returns why it cannot be mounted here (not root, no mount), else None."""
        if os.geteuid() != 0:
            return "mounting a small tmpfs needs root"
        self.path.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={self.size},mode=0700", "tmpfs", str(self.path)],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            return f"cannot mount a tmpfs: {result.stderr.strip() or result.returncode}"
        self.mounted = True
        return None

    def unmount(self) -> None:
        if self.mounted:
            # Lazy: a server killed a moment ago may still hold a file open on it.
            subprocess.run(["umount", "-l", str(self.path)], check=True)
            self.mounted = False

    def fill(self, leave: int = 0) -> None:
        """Write a filler file until the disk refuses another byte, or until only about
        `leave` bytes are free (never fewer)."""
        with (self.path / FILLER).open("ab", buffering=0) as filler:
            for chunk in (1024 * 1024, 4096, 1):
                block = b"\0" * chunk
                while leave == 0 or self.free_bytes() >= leave + chunk:
                    try:
                        filler.write(block)
                    except OSError as error:
                        assert error.errno == errno.ENOSPC, error
                        break
                if leave:
                    break
        assert leave or os.statvfs(self.path).f_bavail == 0

    def free_bytes(self) -> int:
        stat = os.statvfs(self.path)
        return stat.f_bavail * stat.f_frsize

    def free(self) -> None:
        (self.path / FILLER).unlink(missing_ok=True)


def truncate_wal(database: Path) -> None:
    """Checkpoint a SQLite database and empty its WAL file, so that the next write must
    grow the file (on a full disk it then fails instead of reusing the WAL's old space)."""
    deadline = time.monotonic() + 10
    with closing(sqlite3.connect(database, timeout=10)) as connection:
        while True:
            busy, _, _ = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            wal = database.with_name(database.name + "-wal")
            if busy == 0 and (not wal.exists() or wal.stat().st_size == 0):
                return
            assert time.monotonic() < deadline, "the server kept the WAL busy"
            time.sleep(0.05)
