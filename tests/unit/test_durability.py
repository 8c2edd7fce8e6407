"""durability: the writeback head start and the flushes it leads to."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from server.storage.durability import fsync_path, start_writeback


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sync_file_range is Linux's")
def test_writeback_starts_on_a_file_and_is_refused_quietly_elsewhere(tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    with path.open("wb") as out:
        out.write(os.urandom(256 * 1024))
        out.flush()
        assert start_writeback(out.fileno(), 0, 256 * 1024)
        os.fsync(out.fileno())
    read_end, write_end = os.pipe()
    try:
        assert not start_writeback(read_end, 0, 1)  # a pipe has no pages to write: refused, no error
    finally:
        os.close(read_end)
        os.close(write_end)
    fsync_path(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    assert path.stat().st_size == 256 * 1024
