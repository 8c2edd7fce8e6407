"""Applying a restore point through the real server: exact result, safety restore point,
confirmation, exclusivity, verification before any change, and rollback when a source fails."""

from __future__ import annotations

import asyncio
import uuid

from tests.support.api import (
    create_and_wait,
    create_restore_point,
    execute,
    execute_errors,
    subscribe,
    update_settings,
    wait_for_operation,
    wait_until,
)
from tests.support.apply import (
    apply,
    blob_path,
    module_bytes,
    modules,
    operation,
    plant_restore_point,
    restore_points,
    start_apply,
    system,
    wait_for_log,
)
from tests.support.blobs import stored_blobs
from tests.support.server_process import ServerProcess

ENTRIES = "query($id: ID!) { restorePoint(id: $id) { entries { path sha256 } } }"


async def change_settings(server: ServerProcess) -> dict:
    """Change a few modules (a value, a new key, a removed key); returns the new state."""
    await update_settings(server, "audio", {"masterVolume": -3.5, "marker": uuid.uuid4().hex})
    await update_settings(server, "network", {"hostname": f"host-{uuid.uuid4().hex[:6]}", "ntp": None})
    return await modules(server)


async def test_apply_restores_settings_exactly_and_keeps_the_state_before(make_server) -> None:
    proc = make_server().start()
    base_state = await modules(proc)
    base = (await create_and_wait(proc, "base"))["restorePoint"]
    changed_state = await change_settings(proc)
    assert changed_state != base_state
    fingerprint_before = (await system(proc))["configurationFingerprint"]

    op = await start_apply(proc, base["id"])
    assert op["kind"] == "APPLY_RESTORE_POINT" and op["restorePoint"]["id"] == base["id"]
    final = await wait_for_operation(proc, op["id"])
    assert final["status"] == "SUCCEEDED", final
    assert await modules(proc) == base_state

    done = await operation(proc, op["id"])
    safety = done["safetyRestorePoint"]
    # Labelled in words after what was applied; the note keeps its id.
    assert safety["origin"] == "SAFETY" and safety["label"] == "Before applying 'base'"
    assert base["id"] in safety["note"]
    assert safety["checksum"] == fingerprint_before  # it holds the state from just before
    messages = [line["message"] for line in done["log"]]
    assert [line["sequence"] for line in done["log"]] == list(range(1, len(messages) + 1))
    for expected in ("Verified", "Safety restore point", "Replacing source 'settings'", "Reloaded source", "applied."):
        assert any(expected in m for m in messages), (expected, messages)

    now = await execute(
        proc,
        "query($id: ID!) { system { state configurationFingerprint matchesRestorePoint(id: $id) } }",
        id=base["id"],
    )
    checksum = await execute(proc, "query($id: ID!) { restorePoint(id: $id) { checksum } }", id=base["id"])
    assert now["system"] == {
        "state": "RUNNING",
        "configurationFingerprint": checksum["restorePoint"]["checksum"],
        "matchesRestorePoint": True,
    }
    assert not (proc.data_dir / "apply-journal.json").exists()

    # The safety restore point brings the state before back, exactly.
    back = await wait_for_operation(proc, (await start_apply(proc, safety["id"], safety=False))["id"])
    assert back["status"] == "SUCCEEDED"
    assert await modules(proc) == changed_state
    assert len([p for p in await restore_points(proc) if p["origin"] == "SAFETY"]) == 1  # opted out


async def test_apply_replaces_the_whole_module_set(make_server) -> None:
    """Modules missing from the restore point go, modules only in it come."""
    proc = make_server().start()
    wanted = {"setup": {"siteName": "Hall B", "language": "de"}, "kiosk": {"idleSeconds": 90, "pages": ["a", "b"]}}
    point_id = plant_restore_point(
        proc, {("settings", f"{name}.json"): module_bytes(doc) for name, doc in wanted.items()}
    )
    final = await wait_for_operation(proc, (await start_apply(proc, point_id))["id"])
    assert final["status"] == "SUCCEEDED", final
    assert await modules(proc) == wanted


async def test_confirmation_and_unknown_id(make_server) -> None:
    proc = make_server().start()
    point = (await create_and_wait(proc, "target"))["restorePoint"]
    state = await change_settings(proc)
    count = (await execute(proc, "{ operations { totalCount } }"))["operations"]["totalCount"]

    for confirm in ("", "yes", point["id"].upper(), f"{point['id']} "):
        payload = await apply(proc, point["id"], confirm=confirm)
        assert payload["operation"] is None
        assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("CONFIRMATION_REQUIRED", "confirm")]
        assert point["id"] in payload["userErrors"][0]["message"]

    unknown = "rp_0000000000000000000000ff"
    payload = await apply(proc, unknown)
    assert payload["operation"] is None
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("NOT_FOUND", "restorePointId")]

    assert (await execute(proc, "{ operations { totalCount } }"))["operations"]["totalCount"] == count
    assert await modules(proc) == state

    errors = await execute_errors(proc, "query($id: ID!) { system { matchesRestorePoint(id: $id) } }", id=unknown)
    assert errors[0]["extensions"]["code"] == "NOT_FOUND" and unknown in errors[0]["message"]


async def test_exclusive_while_applying(make_server) -> None:
    """updateSettings, a second apply, new operations and deleting the target get BUSY;
    queries and subscriptions keep working; afterwards everything works again."""
    proc = make_server(BACKUPS_TEST_ENTRY_DELAY="0.3").start()
    base_state = await modules(proc)
    base = (await create_and_wait(proc, "base"))["restorePoint"]
    await change_settings(proc)
    states: list[str] = []

    async def watch_system() -> None:
        async for event in subscribe(proc, "subscription { systemChanged { state operation { id } } }"):
            states.append(event["systemChanged"]["state"])
            if states[-1] == "RUNNING" and len(states) > 1:
                return

    watcher = asyncio.ensure_future(watch_system())
    await wait_until(lambda: states)  # the subscription runs: it sent the state it started in
    op = await start_apply(proc, base["id"])
    await wait_for_log(proc, op["id"], "Started.")

    busy = await update_settings(proc, "audio", {"masterVolume": 0})
    assert busy["module"] is None and busy["userErrors"][0]["code"] == "BUSY"
    again = await apply(proc, base["id"])
    assert again["operation"] is None and again["userErrors"][0]["code"] == "BUSY"
    create = await execute(proc, "mutation { createRestorePoint { operation { id } userErrors { code } } }")
    assert create["createRestorePoint"] == {"operation": None, "userErrors": [{"code": "BUSY"}]}
    delete = await execute(
        proc, "mutation($id: ID!) { deleteRestorePoint(id: $id) { deletedId userErrors { code } } }", id=base["id"]
    )
    assert delete["deleteRestorePoint"] == {"deletedId": None, "userErrors": [{"code": "BUSY"}]}
    now = await system(proc)
    assert now["state"] == "APPLYING" and now["operation"]["id"] == op["id"]
    assert len(await modules(proc)) >= 5  # queries still answer

    final = await wait_for_operation(proc, op["id"])
    assert final["status"] == "SUCCEEDED", final
    await asyncio.wait_for(watcher, 20)
    assert states == ["RUNNING", "APPLYING", "RESTARTING", "RUNNING"]
    assert await modules(proc) == base_state
    assert (await update_settings(proc, "audio", {"masterVolume": 1}))["userErrors"] == []


async def test_apply_refused_while_other_operations_run(make_server) -> None:
    proc = make_server(BACKUPS_TEST_ENTRY_DELAY="0.3").start()
    base = (await create_and_wait(proc, "base"))["restorePoint"]
    running = await create_restore_point(proc, "runs")
    payload = await apply(proc, base["id"])
    assert payload["operation"] is None
    assert payload["userErrors"][0]["code"] == "BUSY" and "other operations" in payload["userErrors"][0]["message"]
    assert (await wait_for_operation(proc, running["id"]))["status"] == "SUCCEEDED"


async def test_cancel_before_changes_leaves_everything_as_it_was(make_server) -> None:
    proc = make_server(BACKUPS_TEST_ENTRY_DELAY="0.3").start()
    base = (await create_and_wait(proc, "base"))["restorePoint"]
    state = await change_settings(proc)
    points = await restore_points(proc)
    op = await start_apply(proc, base["id"])
    await wait_for_log(proc, op["id"], "Source 'settings'")  # snapshotting the state before
    data = await execute(
        proc,
        "mutation($id: ID!) { cancelOperation(id: $id) { operation { status } userErrors { code } } }",
        id=op["id"],
    )
    assert data["cancelOperation"] == {"operation": {"status": "CANCELLED"}, "userErrors": []}
    assert await modules(proc) == state
    assert await restore_points(proc) == points  # no safety restore point left behind
    assert (await system(proc))["state"] == "RUNNING"
    assert (await update_settings(proc, "audio", {"masterVolume": 2}))["userErrors"] == []


async def _refused_before_changes(proc: ServerProcess, point_id: str, code: str, needle: str) -> dict:
    state = await modules(proc)
    points = await restore_points(proc)
    final = await wait_for_operation(proc, (await start_apply(proc, point_id))["id"])
    assert final["status"] == "FAILED" and final["error"]["code"] == code, final
    assert needle in final["error"]["message"] and "nothing was changed" in final["error"]["message"]
    assert await modules(proc) == state
    assert await restore_points(proc) == points
    assert not any(p["origin"] == "SAFETY" for p in points)
    assert (await system(proc))["state"] == "RUNNING"
    return final


async def test_corrupted_blob_refuses_before_anything_changes(make_server) -> None:
    # Loose blobs, as an earlier release stored them (a damaged pack range: test_packs.py).
    proc = make_server(BACKUPS_PACK_SMALL_BLOBS="false").start()
    base = (await create_and_wait(proc, "base"))["restorePoint"]
    await change_settings(proc)
    entries = (await execute(proc, ENTRIES, id=base["id"]))["restorePoint"]["entries"]
    victim = next(e for e in entries if e["path"] == "audio.json")
    path = blob_path(proc, victim["sha256"])
    path.write_bytes(path.read_bytes().replace(b"-12.5", b"-99.5"))
    final = await _refused_before_changes(proc, base["id"], "CONTENT_DAMAGED", "settings/audio.json")
    log = (await operation(proc, final["id"]))["log"]
    assert any("does not match its SHA-256" in line["message"] and line["level"] == "ERROR" for line in log)


async def test_missing_blob_refuses_before_anything_changes(make_server) -> None:
    proc = make_server(BACKUPS_PACK_SMALL_BLOBS="false").start()  # loose blobs: one removed by hand
    base = (await create_and_wait(proc, "base"))["restorePoint"]
    await change_settings(proc)
    entries = (await execute(proc, ENTRIES, id=base["id"]))["restorePoint"]["entries"]
    victim = next(e for e in entries if e["path"] == "schedules.json")
    blob_path(proc, victim["sha256"]).unlink()
    final = await _refused_before_changes(proc, base["id"], "CONTENT_DAMAGED", "settings/schedules.json")
    log = (await operation(proc, final["id"]))["log"]
    assert any("content missing" in line["message"] for line in log)


async def test_unknown_source_refuses_before_anything_changes(make_server) -> None:
    proc = make_server().start()
    point_id = plant_restore_point(
        proc,
        {("settings", "setup.json"): module_bytes({"siteName": "X"}), ("mediaserver", "config.yaml"): b"port: 80\n"},
    )
    await _refused_before_changes(proc, point_id, "UNKNOWN_SOURCE", "'mediaserver'")


async def test_source_that_fails_is_rolled_back(make_server) -> None:
    """A real failure: the restore point holds a settings module that is not JSON, so the
    settings source refuses it; the state before stays, and the operation says why."""
    proc = make_server().start()
    state = await change_settings(proc)
    point_id = plant_restore_point(
        proc,
        {("settings", "setup.json"): module_bytes({"siteName": "X"}), ("settings", "broken.json"): b"{not json\n"},
    )
    final = await wait_for_operation(proc, (await start_apply(proc, point_id))["id"])
    assert final["status"] == "FAILED" and final["error"]["code"] == "APPLY_FAILED", final
    assert "'broken' is not JSON" in final["error"]["message"]
    assert "was restored" in final["error"]["message"]
    assert await modules(proc) == state
    messages = [line["message"] for line in (await operation(proc, final["id"]))["log"]]
    assert any(m.startswith("Rolling back") for m in messages)
    assert any(m.startswith("Rolled back") for m in messages)


async def test_failure_after_a_source_changed_rolls_it_back(make_server) -> None:
    """BACKUPS_TEST_FAIL_AT fails the apply right after the settings were replaced (test
    only): the rollback must put the state before back, even with no safety restore point."""
    proc = make_server(BACKUPS_TEST_FAIL_AT="applied:settings").start()
    base = (await create_and_wait(proc, "base"))["restorePoint"]
    state = await change_settings(proc)
    points = await restore_points(proc)
    blobs = stored_blobs(proc)

    final = await wait_for_operation(proc, (await start_apply(proc, base["id"], safety=False))["id"])
    assert final["status"] == "FAILED" and final["error"]["code"] == "APPLY_FAILED", final
    assert "TEST_FAILURE" in final["error"]["message"]
    assert await modules(proc) == state
    assert await restore_points(proc) == points  # no safety restore point was asked for
    assert stored_blobs(proc) == blobs  # and the internal snapshot is gone again
    messages = [line["message"] for line in (await operation(proc, final["id"]))["log"]]
    assert "Source 'settings' replaced." in messages and "Source 'settings' restored." in messages
    assert (await system(proc))["state"] == "RUNNING"
    assert (await update_settings(proc, "audio", {"masterVolume": 4}))["userErrors"] == []
