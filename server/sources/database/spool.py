"""An anonymous temporary file: written once while hashed, then read any number of times."""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import weakref
from pathlib import Path
from typing import BinaryIO

BUFFER = 1024 * 1024


class Spool:
    """Lives in `folder` (the data folder, not a RAM-backed /tmp) but has no name: it is
    unlinked at once, so nothing is left behind even if the process dies. The file closes
    when the Spool is garbage collected (when the snapshot holding it is done)."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=folder, prefix="spool-")
        os.unlink(name)
        self._fd = fd
        self._closer = weakref.finalize(self, os.close, fd)
        self._buffer = bytearray()
        self._hasher = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self._buffer += data
        self._hasher.update(data)
        self.size += len(data)
        if len(self._buffer) >= BUFFER:
            self.flush()

    def flush(self) -> None:
        view = memoryview(self._buffer)
        while view:
            view = view[os.write(self._fd, view) :]
        view.release()
        self._buffer.clear()

    @property
    def digest(self) -> str:
        return self._hasher.hexdigest()

    def open(self) -> BinaryIO:
        """A new reader from the start; reading never moves another reader's position."""
        self.flush()
        return io.BufferedReader(_SpoolReader(self))

    def read_at(self, size: int, offset: int) -> bytes:
        return os.pread(self._fd, size, offset)

    def close(self) -> None:
        self._closer()


class _SpoolReader(io.RawIOBase):
    def __init__(self, spool: Spool) -> None:
        self._spool = spool  # keeps the file open while a reader exists
        self._position = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._spool.read_at(len(buffer), self._position)
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)
