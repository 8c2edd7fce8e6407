"""Restore points that expire: createRestorePoint(expiresAt) and updateRestorePoint(expiresAt)
checked and stored, and the expiry timer deleting an expired one by itself, as retention does:
never a pinned one, never one an operation holds (deleted once let go), logged as a
PRUNE_RESTORE_POINTS operation requested by `server:expiry`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.support.api import OPERATION_FIELDS, execute, wait_for_operation
from tests.support.in_process import InProcessServer
from tests.support.schedules import OPERATIONS, eventually

CREATE = f"""mutation($label: String, $expiresAt: DateTime) {{
    createRestorePoint(label: $label, expiresAt: $expiresAt) {{
        operation {{ {OPERATION_FIELDS} }} userErrors {{ code message field }} }} }}"""
UPDATE = """mutation($id: ID!, $expiresAt: DateTime, $pinned: Boolean) {
    updateRestorePoint(id: $id, expiresAt: $expiresAt, pinned: $pinned) {
        restorePoint { id expiresAt pinned } userErrors { code message field } } }"""
UPDATE_PIN_ONLY = """mutation($id: ID!, $pinned: Boolean) { updateRestorePoint(id: $id, pinned: $pinned) {
    restorePoint { id expiresAt pinned } userErrors { code message field } } }"""
READ = "query($id: ID!) { restorePoint(id: $id) { id label expiresAt pinned } }"
COUNT = "{ restorePoints { totalCount } }"
EXPORT = """mutation($id: ID!) { exportRestorePoint(restorePointId: $id) {
    operation { id } userErrors { code message field } } }"""
EXPIRY = "server:expiry"


def _in(server: InProcessServer, seconds: float) -> str:
    """The server clock's present plus `seconds`, as an ISO time with offset."""
    return (datetime.fromtimestamp(server.clock.time(), UTC) + timedelta(seconds=seconds)).isoformat()


async def _create(server: InProcessServer, label: str, expires_at: str | None) -> dict[str, Any]:
    payload = (await execute(server, CREATE, label=label, expiresAt=expires_at))["createRestorePoint"]
    assert payload["userErrors"] == [], payload
    final = await wait_for_operation(server, payload["operation"]["id"])
    assert final["status"] == "SUCCEEDED", final
    return final["restorePoint"]


async def _read(server: InProcessServer, point_id: str) -> dict[str, Any] | None:
    return (await execute(server, READ, id=point_id))["restorePoint"]


async def _expiry_runs(server: InProcessServer) -> list[dict[str, Any]]:
    return (await execute(server, OPERATIONS, by=EXPIRY))["operations"]["nodes"]


async def _expiry_lines(server: InProcessServer) -> list[str]:
    """Every log line of the expiry's operations, once each has ended (lines are stored in batches)."""
    for run in await _expiry_runs(server):
        assert (await wait_for_operation(server, run["id"]))["status"] == "SUCCEEDED", run
    return [line["message"] for run in await _expiry_runs(server) for line in run["log"]]


async def _gone(server: InProcessServer, point_id: str, timeout: float = 60) -> None:
    async def check() -> bool:
        return await _read(server, point_id) is None

    await eventually(check, timeout=timeout, interval=0.1)


async def test_a_bad_expiry_is_refused_and_nothing_is_made_or_changed(
    make_server: Callable[..., InProcessServer],
) -> None:
    server = make_server().start()
    point = await _create(server, "kept", None)
    for expires_at, words in (
        (_in(server, -60), "past"),
        (_in(server, 0), "past"),
        (_in(server, 11 * 366 * 86400), "ten years"),
        ("2030-01-01T00:00:00", "UTC offset"),
    ):
        payload = (await execute(server, CREATE, label="never", expiresAt=expires_at))["createRestorePoint"]
        assert payload["operation"] is None, payload
        assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("INVALID_INPUT", "expiresAt")]
        assert words in payload["userErrors"][0]["message"]
        updated = (await execute(server, UPDATE, id=point["id"], expiresAt=expires_at))["updateRestorePoint"]
        assert updated["restorePoint"] is None
        assert [(e["code"], e["field"]) for e in updated["userErrors"]] == [("INVALID_INPUT", "expiresAt")]
    assert (await execute(server, COUNT))["restorePoints"]["totalCount"] == 1
    assert (await _read(server, point["id"]))["expiresAt"] is None
    # Ten years ahead less a day is fine.
    fine = (await execute(server, UPDATE, id=point["id"], expiresAt=_in(server, 3652 * 86400)))["updateRestorePoint"]
    assert fine["userErrors"] == []


async def test_an_expired_restore_point_goes_by_itself_unless_pinned(
    make_server: Callable[..., InProcessServer],
) -> None:
    server = make_server().start()
    soon = _in(server, 3)
    doomed = await _create(server, "before the update", soon)
    assert (await _read(server, doomed["id"]))["expiresAt"] == datetime.fromisoformat(soon).isoformat()
    pinned = await _create(server, "pinned meanwhile", _in(server, 3))
    await execute(server, UPDATE_PIN_ONLY, id=pinned["id"], pinned=True)
    # Changed, then cleared: a null expiresAt means never; left out, it is kept.
    cleared = await _create(server, "no longer expires", _in(server, 3))
    later = _in(server, 86400)
    moved = (await execute(server, UPDATE, id=cleared["id"], expiresAt=later))["updateRestorePoint"]
    assert moved["restorePoint"]["expiresAt"] == datetime.fromisoformat(later).isoformat()
    kept = (await execute(server, UPDATE_PIN_ONLY, id=cleared["id"], pinned=False))["updateRestorePoint"]
    assert kept["restorePoint"]["expiresAt"] == datetime.fromisoformat(later).isoformat()
    gone = (await execute(server, UPDATE, id=cleared["id"], expiresAt=None))["updateRestorePoint"]
    assert gone["restorePoint"]["expiresAt"] is None

    await _gone(server, doomed["id"])  # by itself: nothing asked for it
    runs = await _expiry_runs(server)
    assert runs and all(run["kind"] == "PRUNE_RESTORE_POINTS" for run in runs)
    lines = await _expiry_lines(server)
    assert any(doomed["id"] in line and "expired at" in line for line in lines), lines
    assert not any(pinned["id"] in line for line in lines), lines  # a pinned one is not even tried
    assert await _read(server, pinned["id"]) is not None
    assert await _read(server, cleared["id"]) is not None


def _folder_config(tmp_path: Path, files: int) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    for number in range(files):
        (site / f"page-{number}.html").write_text(f"<p>{number}</p>")
    config = tmp_path / "backups.toml"
    config.write_text(f'[[sources]]\nname = "site"\nkind = "directory"\npath = "{site}"\n')
    return config


async def test_a_held_restore_point_expires_once_let_go(
    make_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    # The export pauses 4 s (the test delay) while it holds the restore point; the test clock
    # is moved past the restore point's expiry meanwhile, and a pin change wakes the timer.
    config = _folder_config(tmp_path, files=1)
    server = make_server(BACKUPS_CONFIG=str(config), BACKUPS_TEST_ENTRY_DELAY="4").start()
    point = await _create(server, "in use", _in(server, 86400))
    export = (await execute(server, EXPORT, id=point["id"]))["exportRestorePoint"]
    assert export["userErrors"] == [], export
    server.clock.advance(2 * 86400)
    woken = (await execute(server, UPDATE_PIN_ONLY, id=point["id"], pinned=False))["updateRestorePoint"]
    assert woken["userErrors"] == []
    exported = await wait_for_operation(server, export["operation"]["id"])
    assert exported["status"] == "SUCCEEDED", exported  # never deleted under the export
    await _gone(server, point["id"])
    lines = await _expiry_lines(server)
    assert any(point["id"] in line and "expired at" in line for line in lines), lines
    # Whenever the timer looked, the restore point went only once the export had let it go.
    [deleting] = [
        run for run in await _expiry_runs(server) if any(point["id"] in line["message"] for line in run["log"])
    ]
    assert datetime.fromisoformat(deleting["createdAt"]) >= datetime.fromisoformat(exported["finishedAt"])


async def test_an_expiry_passed_while_stopped_is_caught_up_at_start(
    make_server: Callable[..., InProcessServer],
) -> None:
    server = make_server().start()
    point = await _create(server, "past its time at the restart", _in(server, 86400))
    server.stop()
    server.clock.advance(2 * 86400)  # the day passes while the server is stopped
    server.start()
    await _gone(server, point["id"])
    runs = await _expiry_runs(server)
    assert runs and runs[0]["requestedBy"] == EXPIRY


async def test_a_pinned_restore_point_outlives_its_expiry_and_goes_once_unpinned(
    make_server: Callable[..., InProcessServer],
) -> None:
    server = make_server().start()
    kept = await _create(server, "pinned past its time", _in(server, 86400))
    await execute(server, UPDATE_PIN_ONLY, id=kept["id"], pinned=True)
    server.clock.advance(2 * 86400)  # its time passes while it is pinned
    # Another one expiring now: once it is gone, the timer has looked since the pinned one's time.
    witness = await _create(server, "witness", _in(server, 1))
    await _gone(server, witness["id"])
    assert (await _read(server, kept["id"]))["pinned"] is True
    lines = await _expiry_lines(server)
    assert not any(kept["id"] in line for line in lines), lines
    await execute(server, UPDATE_PIN_ONLY, id=kept["id"], pinned=False)
    await _gone(server, kept["id"])  # unpinned after its time: it goes at once
