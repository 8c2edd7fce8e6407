"""SIGKILL during a verification and during a repair (held at BACKUPS_TEST_PAUSE_AT=verify-read
or verify-repair, a blob written beside its place but not yet renamed): after the restart
nothing half-written is in the store, the operation is INTERRUPTED, and a new run finishes."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.api.test_packs import site_config
from tests.api.test_verification import POINT, VERIFY, blob_path, entry, flip, verify
from tests.support.api import create_and_wait, execute, wait_for_operation
from tests.support.apply import wait_for_pause
from tests.support.local_copies import exported_copy
from tests.support.server_process import ServerProcess


def temp_files(proc: ServerProcess) -> list[Path]:
    """Temporary files in the content store: beside the blobs (`.put-*`) and in its temp folder."""
    blobs = proc.data_dir / "blobs"
    return [p for p in blobs.glob("??/.*")] + [p for p in (blobs / "tmp").glob("*")]


async def killed_at(proc: ServerProcess, point_id: str) -> str:
    """Start a verification of the restore point, wait for its test pause, SIGKILL the server
    and start it again without the pause; the operation's id."""
    started = (await execute(proc, VERIFY, ids=[point_id]))["verifyBackups"]
    assert started["userErrors"] == [], started
    op_id = started["operation"]["id"]
    await wait_for_pause(proc, op_id)
    return op_id


async def restart(proc: ServerProcess) -> None:
    await asyncio.to_thread(proc.kill)
    proc.env_overrides.pop("BACKUPS_TEST_PAUSE_AT")
    await asyncio.to_thread(proc.start)


@pytest.mark.slow
@pytest.mark.parametrize("step", ["verify-read", "verify-repair"])
async def test_sigkill_during_a_verification_or_a_repair(
    make_server_process: Callable[..., ServerProcess], tmp_path: Path, step: str
) -> None:
    site, config = site_config(tmp_path)
    (site / "big.bin").write_bytes(os.urandom(3 * 1024 * 1024))  # a loose blob
    proc = make_server_process(BACKUPS_CONFIG=str(config), BACKUPS_TEST_PAUSE_AT=step).start()
    a = (await create_and_wait(proc, "a"))["restorePoint"]["id"]
    await exported_copy(proc, a)
    big = await entry(proc, a, "big.bin")
    path = blob_path(proc, big["sha256"])
    good = path.read_bytes()
    flip(path, 123)
    damaged = path.read_bytes()

    op_id = await killed_at(proc, a)
    if step == "verify-repair":
        assert len(temp_files(proc)) == 1, "the repair's blob is written beside its place, not yet renamed"
    await restart(proc)

    final = await wait_for_operation(proc, op_id)
    assert final["status"] == "INTERRUPTED", final
    assert temp_files(proc) == [], "nothing half-written is left in the store"
    assert path.read_bytes() == damaged, "the blob was not replaced by a partial write"
    assert (await execute(proc, POINT, id=a))["restorePoint"]["verification"] is None, "nothing stored"

    await verify(proc, [a])
    found = (await execute(proc, POINT, id=a))["restorePoint"]["verification"]
    assert found["state"] == "OK" and found["repaired"] == 1, found
    assert path.read_bytes() == good
