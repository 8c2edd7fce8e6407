"""durability: the writeback head start and the flushes it leads to."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from server.storage.durability import TEMP_NAME, atomic_write, fsync_path, is_temp_name, start_writeback, write_atomic


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


# ---- atomic_write: whole or nothing, one temp-name pattern ----------------------------------


def test_atomic_write_replaces_the_target_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "journal.json"
    target.write_bytes(b"old")
    write_atomic(target, b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["journal.json"]
    assert target.stat().st_mode & 0o777 == 0o600


def test_a_failed_streaming_write_keeps_the_old_file_and_removes_the_temp(tmp_path: Path) -> None:
    target = tmp_path / "copy.zip"
    target.write_bytes(b"old")
    seen: list[str] = []
    with pytest.raises(RuntimeError), atomic_write(target) as pending:
        pending.file.write(b"half")
        seen.append(pending.temp.name)
        assert pending.temp.exists() and is_temp_name(pending.temp.name)
        raise RuntimeError("the writer failed")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["copy.zip"]
    assert TEMP_NAME.fullmatch(seen[0])["target"] == "copy.zip"


def test_the_target_can_be_named_late(tmp_path: Path) -> None:
    with atomic_write(tmp_path / "upload") as pending:
        pending.file.write(b"data")
        assert pending.sync() == 4
        pending.target = tmp_path / "named.zip"
    assert [p.name for p in tmp_path.iterdir()] == ["named.zip"]


def test_an_exclusive_write_never_replaces_what_is_there(tmp_path: Path) -> None:
    target = tmp_path / "secret.key"
    write_atomic(target, b"first", exclusive=True)
    with pytest.raises(FileExistsError):
        write_atomic(target, b"second", exclusive=True)
    assert target.read_bytes() == b"first"
    assert [p.name for p in tmp_path.iterdir()] == ["secret.key"]


@pytest.mark.parametrize(
    ("name", "temp"),
    [
        (".copy.zip.ab_c9xyz.partial", True),
        (".apply-journal.json.k2j3h4_q.partial", True),
        ("copy.zip.abc.partial", False),  # not hidden
        (".copy.zip.partial", False),  # no random part
        (".copy.zip.abc_9xyz.partial\n", False),
        (".copy.zip.abc_9xyz.partial.zip", False),
    ],
)
def test_temp_names_are_recognised_exactly(name: str, temp: bool) -> None:
    assert is_temp_name(name) is temp


def test_a_write_killed_midway_leaves_the_old_file_whole(tmp_path: Path) -> None:
    """SIGKILL while the temp file is being written: the target is the old one, whole."""
    target = tmp_path / "data.bin"
    target.write_bytes(b"old" * 1000)
    script = (
        "import sys, time\nfrom pathlib import Path\nfrom server.storage.durability import atomic_write\n"
        "with atomic_write(Path(sys.argv[1])) as pending:\n"
        "    pending.file.write(b'new' * 1000); pending.sync(); print('written', flush=True); time.sleep(60)\n"
    )
    for _ in range(10):
        child = subprocess.Popen([sys.executable, "-c", script, str(target)], stdout=subprocess.PIPE)
        assert child.stdout is not None and child.stdout.readline() == b"written\n"
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        assert target.read_bytes() == b"old" * 1000
        leftovers = [p.name for p in tmp_path.iterdir() if p != target]
        assert len(leftovers) == 1 and is_temp_name(leftovers[0]), leftovers
        (tmp_path / leftovers[0]).unlink()
