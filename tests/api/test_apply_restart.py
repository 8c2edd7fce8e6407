"""The restart step of an apply: BACKUPS_RESTART_COMMAND's output in the log, a command that
fails or times out (the configuration stays applied, the operation says so)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from tests.support.api import create_and_wait, update_settings, wait_for_operation
from tests.support.apply import modules, operation, start_apply, system


async def applied_with(make_server, command: str, **env: str) -> tuple[dict, dict, dict]:
    """Apply a restore point of the seed state on a server with this restart command;
    returns (final operation with log, seed state, state before the apply)."""
    proc = make_server(BACKUPS_RESTART_COMMAND=command, **env).start()
    new_state = await modules(proc)
    point = (await create_and_wait(proc, "target"))["restorePoint"]
    await update_settings(proc, "audio", {"marker": uuid.uuid4().hex})
    old_state = await modules(proc)
    final = await wait_for_operation(proc, (await start_apply(proc, point["id"]))["id"])
    assert (await system(proc))["state"] == "RUNNING"
    assert await modules(proc) == new_state  # applied before the restart, whatever it does
    assert (await update_settings(proc, "audio", {"masterVolume": 1}))["userErrors"] == []
    return await operation(proc, final["id"]), new_state, old_state


async def test_restart_command_output_goes_to_the_log(make_server) -> None:
    full, _, _ = await applied_with(
        make_server, 'echo "restarting media services"; echo "warning: slow" >&2; echo "op=$BACKUPS_APPLY_OPERATION_ID"'
    )
    assert full["status"] == "SUCCEEDED", full
    messages = [line["message"] for line in full["log"]]
    assert "restart> restarting media services" in messages
    assert "restart> warning: slow" in messages
    assert f"restart> op={full['id']}" in messages
    assert "The restart command finished (exit code 0)." in messages


async def test_restart_command_that_fails(make_server) -> None:
    full, _, _ = await applied_with(make_server, "echo boom; exit 3")
    assert full["status"] == "FAILED", full
    error = full["error"]
    assert error["code"] == "RESTART_FAILED"
    assert "exited with code 3" in error["message"]
    assert "configuration is in place" in error["message"]
    assert full["safetyRestorePoint"]["id"] in error["message"]  # the way back
    assert "restart> boom" in [line["message"] for line in full["log"]]


@pytest.mark.slow
async def test_restart_command_that_times_out(make_server, tmp_path) -> None:
    pid_file = tmp_path / "sleep.pid"
    started = time.monotonic()
    full, _, _ = await applied_with(
        make_server, f'sleep 30 & echo $! > "{pid_file}"; wait', BACKUPS_RESTART_TIMEOUT="1"
    )
    assert time.monotonic() - started < 20
    assert full["status"] == "FAILED", full
    assert full["error"]["code"] == "RESTART_TIMEOUT"
    assert "within 1 s" in full["error"]["message"]
    assert not alive(int(pid_file.read_text()))  # the whole process group was stopped


def alive(pid: int, within: float = 5.0) -> bool:
    """Whether `pid` still runs after `within` seconds (a zombie awaiting its reaper is dead)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return False
        if state in ("Z", "X"):
            return False
        time.sleep(0.1)
    return True
