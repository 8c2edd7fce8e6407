"""The server dies during an apply (SIGKILL at each named step, via the test-only
BACKUPS_TEST_PAUSE_AT), or is stopped, or is killed by its own restart command: after the
next start the configuration is entirely old or entirely new, and the operation has
finished, with log lines from before and after the restart."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tests.support.api import (
    create_and_wait,
    execute,
    subscribe,
    update_settings,
    wait_for_operation,
)
from tests.support.apply import (
    LOG,
    log_after,
    modules,
    operation,
    restore_points,
    start_apply,
    system,
    wait_for_pause,
)
from tests.support.server_process import ServerProcess

BEFORE_CHANGES = {"verify", "safety"}  # steps at which nothing has been changed yet


async def prepare(proc: ServerProcess) -> tuple[dict, dict, dict, str]:
    """A restore point of the seed state, then changed settings: (new, old, point, fingerprint)."""
    new_state = await modules(proc)
    point = (await create_and_wait(proc, "target"))["restorePoint"]
    await update_settings(proc, "audio", {"masterVolume": -1.0, "marker": uuid.uuid4().hex})
    await update_settings(proc, "lighting", {"universe": 9, "protocol": None})
    old_state = await modules(proc)
    return new_state, old_state, point, (await system(proc))["configurationFingerprint"]


async def restart_after(proc: ServerProcess, stop, *, drop: tuple[str, ...] = ()) -> None:
    """Stop the server (kill or graceful), then start it again without the test settings."""
    await asyncio.to_thread(stop)
    for name in drop:
        proc.env_overrides.pop(name, None)
    await asyncio.to_thread(proc.start)


async def check_finished(proc: ServerProcess, op_id: str, paused_at: int) -> dict:
    """The operation ended with lines after the restart; a client resuming the log with
    afterSequence gets exactly the lines it has not seen."""
    final = await wait_for_operation(proc, op_id)
    assert final["status"] in ("SUCCEEDED", "FAILED"), final
    full = await operation(proc, op_id)
    sequences = [line["sequence"] for line in full["log"]]
    assert sequences == list(range(1, len(sequences) + 1))
    assert "Test pause" in full["log"][paused_at - 1]["message"]  # stored before the kill
    rest = await log_after(proc, op_id, paused_at)
    assert [line["sequence"] for line in rest] == sequences[paused_at:]
    assert rest[0]["message"].startswith("Resumed after a restart"), rest
    assert (await system(proc))["state"] == "RUNNING"
    assert not (proc.data_dir / "apply-journal.json").exists()
    running = await execute(proc, "{ operations(status: [QUEUED, RUNNING, INTERRUPTED]) { totalCount } }")
    assert running["operations"]["totalCount"] == 0
    return full


@pytest.mark.slow
@pytest.mark.parametrize("step", ["verify", "safety", "applying", "applied:settings", "restart", "finish"])
async def test_killed_at_each_step(make_server_process, step: str) -> None:
    proc = make_server_process(BACKUPS_TEST_PAUSE_AT=step).start()
    new_state, old_state, point, old_fingerprint = await prepare(proc)
    points_before = await restore_points(proc)
    op = await start_apply(proc, point["id"])
    paused_at = await wait_for_pause(proc, op["id"])

    if step not in BEFORE_CHANGES:  # past the point of no return, a cancel is refused
        data = await execute(
            proc, "mutation($id: ID!) { cancelOperation(id: $id) { userErrors { code message } } }", id=op["id"]
        )
        assert data["cancelOperation"]["userErrors"][0]["code"] == "INVALID_INPUT"
    await restart_after(proc, proc.kill, drop=("BACKUPS_TEST_PAUSE_AT",))
    full = await check_finished(proc, op["id"], paused_at)

    if step in BEFORE_CHANGES:
        assert full["status"] == "FAILED" and full["error"]["code"] == "INTERRUPTED_BEFORE_CHANGES", full
        assert await modules(proc) == old_state
        assert await restore_points(proc) == points_before  # the safety restore point is gone
    else:
        assert full["status"] == "SUCCEEDED", full
        assert await modules(proc) == new_state
        safety = full["safetyRestorePoint"]
        assert safety["origin"] == "SAFETY" and safety["checksum"] == old_fingerprint
    assert (await update_settings(proc, "audio", {"masterVolume": 5}))["userErrors"] == []


@pytest.mark.slow
async def test_killed_while_rolling_back(make_server_process) -> None:
    """A source failed (test-only BACKUPS_TEST_FAIL_AT), and the server dies during the
    rollback: the next start finishes the rollback."""
    proc = make_server_process(BACKUPS_TEST_FAIL_AT="applied:settings", BACKUPS_TEST_PAUSE_AT="rollback").start()
    _, old_state, point, _ = await prepare(proc)
    op = await start_apply(proc, point["id"])
    paused_at = await wait_for_pause(proc, op["id"])
    assert await modules(proc) != old_state  # the settings were replaced when it failed
    await restart_after(proc, proc.kill, drop=("BACKUPS_TEST_PAUSE_AT", "BACKUPS_TEST_FAIL_AT"))
    full = await check_finished(proc, op["id"], paused_at)
    assert full["status"] == "FAILED" and full["error"]["code"] == "APPLY_FAILED", full
    assert "was restored" in full["error"]["message"]
    assert await modules(proc) == old_state


@pytest.mark.slow
async def test_graceful_stop_mid_apply_finishes_at_next_start(make_server_process) -> None:
    """SIGTERM (a service manager's restart) past the point of no return: the operation is
    left to the next start, which rolls forward."""
    proc = make_server_process(BACKUPS_TEST_PAUSE_AT="applied:settings").start()
    new_state, _, point, _ = await prepare(proc)
    op = await start_apply(proc, point["id"])
    paused_at = await wait_for_pause(proc, op["id"])
    await restart_after(proc, proc.stop, drop=("BACKUPS_TEST_PAUSE_AT",))
    final = await wait_for_operation(proc, op["id"])
    assert final["status"] == "SUCCEEDED", final
    assert await modules(proc) == new_state
    messages = [line["message"] for line in (await operation(proc, op["id"]))["log"]][paused_at:]
    assert messages[0].startswith("The server is stopping")
    assert messages[1].startswith("Resumed after a restart")


@pytest.mark.slow
async def test_restart_command_that_kills_this_server(make_server_process, tmp_path) -> None:
    """The restart command restarts this very server (here: SIGKILL to its parent). The
    next start finishes the apply and does not run the command a second time."""
    runs = tmp_path / "restart-runs"
    command = f'echo ran >> "{runs}"; echo "stopping the server"; sleep 0.1; kill -KILL $PPID; sleep 5'
    proc = make_server_process(BACKUPS_RESTART_COMMAND=command).start()
    new_state, _, point, _ = await prepare(proc)
    op = await start_apply(proc, point["id"])
    seen: list[dict] = []

    async def follow_live() -> None:  # a client watching the log until the server dies
        try:
            async for event in subscribe(proc, LOG, id=op["id"], after=0):
                seen.append(event["operationLog"])
        except Exception:  # the connection drops with the server
            pass

    follower = asyncio.ensure_future(follow_live())
    await asyncio.to_thread(proc.process.wait, 30)
    await asyncio.wait_for(follower, 30)
    await asyncio.to_thread(proc.start)
    final = await wait_for_operation(proc, op["id"])
    assert final["status"] == "SUCCEEDED", final
    assert await modules(proc) == new_state
    assert runs.read_text() == "ran\n"
    log = (await operation(proc, op["id"]))["log"]
    messages = [line["message"] for line in log]
    assert any(m.startswith("Running the restart command") for m in messages)
    assert any("the command is not run again" in m for m in messages)
    # Every line the client saw before the crash is stored under the same number, so a
    # client resuming with afterSequence misses nothing and sees nothing twice.
    assert seen and all(log[line["sequence"] - 1]["message"] == line["message"] for line in seen)
    rest = await log_after(proc, op["id"], seen[-1]["sequence"])
    assert [line["sequence"] for line in rest] == list(range(seen[-1]["sequence"] + 1, len(log) + 1))


@pytest.mark.slow
async def test_the_safety_restore_point_cannot_be_deleted_while_the_apply_runs(make_server_process) -> None:
    """It is the way back: deleting it mid-apply is refused (BUSY), before and after a restart
    that resumes the apply; once the apply has ended it is an ordinary restore point."""
    delete = "mutation($id: ID!) { deleteRestorePoint(id: $id) { deletedId userErrors { code message } } }"
    proc = make_server_process(BACKUPS_TEST_PAUSE_AT="applied:settings").start()
    new_state, _, point, _ = await prepare(proc)
    op = await start_apply(proc, point["id"])
    await wait_for_pause(proc, op["id"])
    safety = (await operation(proc, op["id"]))["safetyRestorePoint"]
    assert safety["origin"] == "SAFETY"
    refused = (await execute(proc, delete, id=safety["id"]))["deleteRestorePoint"]
    assert refused["deletedId"] is None and refused["userErrors"][0]["code"] == "BUSY", refused
    assert safety["id"] in {p["id"] for p in await restore_points(proc)}

    # Stopped past the point of no return, the next start resumes the apply: still held.
    proc.env_overrides["BACKUPS_TEST_PAUSE_AT"] = "finish"
    await restart_after(proc, proc.stop)
    await wait_for_pause(proc, op["id"])
    refused = (await execute(proc, delete, id=safety["id"]))["deleteRestorePoint"]
    assert refused["userErrors"][0]["code"] == "BUSY", refused

    await restart_after(proc, proc.stop, drop=("BACKUPS_TEST_PAUSE_AT",))
    assert (await wait_for_operation(proc, op["id"]))["status"] == "SUCCEEDED"
    assert await modules(proc) == new_state
    deleted = (await execute(proc, delete, id=safety["id"]))["deleteRestorePoint"]
    assert deleted == {"deletedId": safety["id"], "userErrors": []}
