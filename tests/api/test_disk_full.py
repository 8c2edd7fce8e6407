"""A full disk through the real server: every write that hits it says STORAGE_FULL and names
what it could not write; nothing stored before is lost; an operation whose end cannot be
stored shows its real end at once and stores it once there is room, without a restart."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import httpx
import pytest

from tests.api.test_local_copies import COPIES, OP_PAYLOAD, start_import, upload
from tests.support.api import (
    OPERATION_FIELDS,
    auth_headers,
    create_and_wait,
    execute,
    subscribe,
    update_settings,
    wait_for_operation,
)
from tests.support.apply import apply
from tests.support.local_copies import exported_copy
from tests.support.schedules import RUN, create_schedule, far_off_cron
from tests.support.server_process import TEST_DATABASE_URL, ServerProcess
from tests.support.small_disk import SmallDisk, truncate_wal

POINTS = "{ restorePoints(first: 50) { edges { node { id checksum } } } }"
OPERATION = f"query($id: ID!) {{ operation(id: $id) {{ {OPERATION_FIELDS} log {{ sequence message }} }} }}"
ACTIVE = "{ operations(first: 50, status: [QUEUED, RUNNING]) { edges { node { id kind status } } } }"
SETTINGS = "{ modules { name settings } }"
UPLOAD_QUERY = "mutation($f: Upload!) { uploadLocalCopy(file: $f) { localCopy { id } userErrors { code message } } }"
sqlite_only = pytest.mark.skipif(
    TEST_DATABASE_URL is not None, reason="a full PostgreSQL disk cannot be made here; see test_storage_full.py"
)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Callable[..., SmallDisk]]:
    """Mount small tmpfs disks under tmp_path (always unmounted after); skips where it cannot."""
    disks: list[SmallDisk] = []

    def make(name: str = "data", size: str = "24m") -> SmallDisk:
        disk = SmallDisk(tmp_path / name, size)
        if (why := disk.mount()) is not None:
            pytest.skip(why)
        disks.append(disk)
        return disk

    yield make
    for disk in reversed(disks):
        disk.free()
        disk.unmount()


def assert_storage_full(error: dict, *names: str) -> None:
    assert error["code"] == "STORAGE_FULL", error
    assert error["message"].startswith("storage is full: could not write to "), error
    assert any(name in error["message"] for name in names), error


async def points(server: ServerProcess) -> list[dict]:
    return [edge["node"] for edge in (await execute(server, POINTS))["restorePoints"]["edges"]]


async def no_operation_left_active(server: ServerProcess) -> None:
    assert (await execute(server, ACTIVE))["operations"]["edges"] == []


async def start(server: ServerProcess, mutation: str, **variables: str) -> dict:
    field = mutation.split("(")[0]
    data = await execute(server, f"mutation($id: ID!) {{ {mutation} {{ {OP_PAYLOAD} }} }}", **variables)
    return data[field]


async def failed_storage_full(server: ServerProcess, payload: dict, *names: str) -> None:
    """An operation refused at once, or started and then failed: either way STORAGE_FULL."""
    if payload["userErrors"]:
        assert_storage_full(payload["userErrors"][0], *names)
        return
    final = await wait_for_operation(server, payload["operation"]["id"])
    assert final["status"] == "FAILED", final
    assert_storage_full(final["error"], *names)


async def test_full_content_store_and_local_copies_folder(small_disk, make_server, tmp_path: Path) -> None:
    disk = small_disk("data")
    # The database lives elsewhere (on PostgreSQL it always does): only the files fill up.
    env = {} if TEST_DATABASE_URL else {"BACKUPS_DATABASE_URL": f"sqlite:///{tmp_path / 'backups.db'}"}
    proc = make_server("data", **env).start()
    await update_settings(proc, "setup", {"siteName": "gone"})
    gone = await create_and_wait(proc, "gone")
    gone_copy = await exported_copy(proc, gone["restorePoint"]["id"], "id fileName sizeBytes restorePointId")
    outside = tmp_path / "gone.zip"
    shutil.copy(disk.path / "local-copies" / gone_copy["fileName"], outside)
    await execute(
        proc, "mutation($id: ID!) { deleteRestorePoint(id: $id) { deletedId } }", id=gone["restorePoint"]["id"]
    )
    await update_settings(proc, "setup", {"siteName": "kept"})
    kept = (await create_and_wait(proc, "kept"))["restorePoint"]["id"]
    kept_copy = await exported_copy(proc, kept, "id fileName sizeBytes restorePointId")
    await update_settings(proc, "setup", {"siteName": f"new {uuid.uuid4().hex}"})  # content not stored yet
    before = await points(proc)
    copies_before = (await execute(proc, COPIES))["localCopies"]

    disk.fill()
    await failed_storage_full(
        proc, await start(proc, "exportRestorePoint(restorePointId: $id)", id=kept), "the local copies folder"
    )
    uploaded = await upload(proc, outside)
    assert uploaded["localCopy"] is None
    assert_storage_full(uploaded["userErrors"][0], "the local copies folder")
    assert uploaded["userErrors"][0]["field"] == "file"
    created = await execute(proc, f'mutation {{ createRestorePoint(label: "full") {{ {OP_PAYLOAD} }} }}')
    await failed_storage_full(proc, created["createRestorePoint"], "the content store")
    await failed_storage_full(proc, await start_import(proc, gone_copy["id"]), "the content store")
    await failed_storage_full(proc, await apply(proc, kept), "the apply journal", "the content store")
    await no_operation_left_active(proc)
    assert not [p.name for p in (disk.path / "local-copies").iterdir() if p.name.startswith(".")]

    disk.free()
    assert await points(proc) == before
    assert (await execute(proc, COPIES))["localCopies"] == copies_before
    again = await exported_copy(proc, kept, "id fileName sizeBytes restorePointId")
    assert again["restorePointId"] == kept and again["sizeBytes"] == kept_copy["sizeBytes"]
    assert (await upload(proc, outside))["userErrors"] == []
    await create_and_wait(proc, "room again")


@sqlite_only
async def test_full_sqlite_database(small_disk, make_server) -> None:
    disk = small_disk("data")
    proc = make_server("data").start()
    await update_settings(proc, "setup", {"siteName": "before"})
    point = (await create_and_wait(proc, "before"))["restorePoint"]["id"]
    settings = await execute(proc, SETTINGS)
    before = await points(proc)

    for attempt in range(3):  # each try after a fresh squeeze: no WAL space left to reuse
        truncate_wal(disk.path / "backups.db")
        disk.fill()
        changed = await update_settings(proc, "setup", {"siteName": f"after {attempt}"})
        assert changed["module"] is None
        assert_storage_full(changed["userErrors"][0], "the database")
        created = await execute(proc, f'mutation {{ createRestorePoint(label: "full") {{ {OP_PAYLOAD} }} }}')
        await failed_storage_full(proc, created["createRestorePoint"], "the database")
        await failed_storage_full(
            proc,
            await start(proc, "exportRestorePoint(restorePointId: $id)", id=point),
            "the database",
            "the local copies folder",
        )
        await failed_storage_full(proc, await apply(proc, point), "the database", "the content store")
        disk.free()

    assert await execute(proc, SETTINGS) == settings
    assert await points(proc) == before
    await no_operation_left_active(proc)
    assert (await exported_copy(proc, point, "id fileName sizeBytes restorePointId"))["restorePointId"] == point


def stored_status(database: Path, op_id: str) -> str:
    with closing(sqlite3.connect(database)) as connection:
        return connection.execute("SELECT status FROM operation WHERE id = ?", (op_id,)).fetchone()[0]


@sqlite_only
async def test_end_that_cannot_be_stored_is_shown_and_stored_once_there_is_room(
    small_disk, make_server_process, tmp_path: Path
) -> None:
    disk = small_disk("data")
    # The ZIP goes elsewhere, so the export itself succeeds while only the database is full.
    proc = make_server_process("data", BACKUPS_LOCAL_COPIES_DIR=str(tmp_path / "copies")).start()
    database = disk.path / "backups.db"
    point = (await create_and_wait(proc, "exported"))["restorePoint"]["id"]
    proc.stop()
    proc.env_overrides["BACKUPS_TEST_ENTRY_DELAY"] = "1"  # time to fill the disk while an export runs
    proc.start()
    ended: dict[str, dict] = {}
    for _ in range(3):
        started = await start(proc, "exportRestorePoint(restorePointId: $id)", id=point)
        op_id = started["operation"]["id"]
        progress = asyncio.create_task(wait_for_operation(proc, op_id, timeout=30))
        truncate_wal(database)
        disk.fill()
        final = await progress  # ends, with its real end, while the disk is still full
        assert final["status"] == "SUCCEEDED" and final["progress"] == 1.0, final
        shown = (await execute(proc, OPERATION, id=op_id))["operation"]
        assert shown["status"] == "SUCCEEDED" and shown["log"][-1]["message"].startswith("Finished"), shown
        assert stored_status(database, op_id) in ("QUEUED", "RUNNING")  # not stored: the disk is full
        log = [
            e async for e in subscribe(proc, "subscription($id: ID!) { operationLog(id: $id) { message } }", id=op_id)
        ]
        assert log[-1]["operationLog"]["message"].startswith("Finished")

        disk.free()
        for _ in range(100):
            if stored_status(database, op_id) == "SUCCEEDED":
                break
            await asyncio.sleep(0.1)
        assert stored_status(database, op_id) == "SUCCEEDED"
        ended[op_id] = shown

    proc.kill()  # what is stored now is what a restart shows
    proc.start()
    for op_id, shown in ended.items():
        after = (await execute(proc, OPERATION, id=op_id))["operation"]
        assert after["status"] == "SUCCEEDED" and after["log"] == shown["log"], after
    assert proc.log_path.read_text().count("could not store the final state (SUCCEEDED)") == len(ended)


LOCATIONS_TOML = """
[[sources]]
name = "site"
kind = "directory"
path = "{site}"

[encryption]
recipients = []

[[locations]]
name = "plain"
kind = "folder"
path = "{plain}"

[[locations]]
name = "secret"
kind = "folder"
path = "{secret}"
encrypt = true
"""
RUN_LOG = """query($id: ID!) { operation(id: $id) { status error { code message } log { level message }
    localCopy { id } } }"""
BACKUP_HEALTH = "{ backupHealth { status problems } }"
REMOTE = "{ locations { name copies { id fileName encrypted } } }"


async def finished(server, payload: dict) -> dict:
    assert payload["userErrors"] == [], payload
    final = await wait_for_operation(server, payload["operation"]["id"])
    return (await execute(server, RUN_LOG, id=final["id"]))["operation"]


async def upload_to(server, copy_id: str, location: str) -> dict:
    mutation = (
        f"mutation($id: ID!, $to: String!) {{ uploadToLocation(localCopyId: $id, location: $to) {{ {OP_PAYLOAD} }} }}"
    )
    return await finished(server, (await execute(server, mutation, id=copy_id, to=location))["uploadToLocation"])


async def test_full_disks_while_copying_to_locations(small_disk, make_server, tmp_path: Path) -> None:
    """Encrypting for a location, decrypting a fetched or imported copy, writing at a folder
    location: a full disk is STORAGE_FULL naming the folder, and a schedule's run whose copy
    to one location does not fit still succeeds, with a WARNING, as its restore point is kept."""
    disk, plain_disk = small_disk("copies", "16m"), small_disk("plain", "16m")
    site, secret = tmp_path / "site", tmp_path / "secret"
    site.mkdir()
    secret.mkdir()
    (site / "noise.bin").write_bytes(os.urandom(3 * 1024 * 1024))  # does not compress: the copy is as big
    config = tmp_path / "backups.toml"
    config.write_text(LOCATIONS_TOML.format(site=site, plain=plain_disk.path, secret=secret))
    server = make_server(BACKUPS_CONFIG=str(config), BACKUPS_LOCAL_COPIES_DIR=str(disk.path)).start()
    folder = f"the local copies folder ({disk.path})"

    point = (await create_and_wait(server, "first"))["restorePoint"]["id"]
    plain_copy = await exported_copy(server, point, "id fileName sizeBytes restorePointId")
    size = plain_copy["sizeBytes"]
    encrypted = await execute(
        server,
        f"mutation($id: ID!) {{ exportRestorePoint(restorePointId: $id, encrypt: true) {{ {OP_PAYLOAD} }} }}",
        id=point,
    )
    encrypted_op = await finished(server, encrypted["exportRestorePoint"])
    assert encrypted_op["status"] == "SUCCEEDED", encrypted_op
    assert (await upload_to(server, plain_copy["id"], "secret"))["status"] == "SUCCEEDED"

    # Room for the run's staging copy, not for the encrypted one made from it for 'secret'.
    disk.fill(leave=size * 3 // 2)
    schedule = await create_schedule(server, name="nightly", cron=far_off_cron(), copyToLocations=["plain", "secret"])
    run = await finished(server, (await execute(server, RUN, id=schedule["id"]))["runSchedule"])
    assert run["status"] == "SUCCEEDED", run
    warnings = [line["message"] for line in run["log"] if line["level"] == "WARNING"]
    assert any(
        m.startswith("Upload to location 'secret' failed: storage is full: could not write to " + folder)
        for m in warnings
    ), warnings
    assert any("Copied to 1 of 2 locations; problems at: secret" in m for m in warnings), warnings
    health = (await execute(server, BACKUP_HEALTH))["backupHealth"]
    assert health["status"] == "WARNING" and any("location 'secret'" in p for p in health["problems"]), health

    # Fetching the encrypted copy at 'secret': it fits, its decrypted check does not.
    [remote] = [
        c for loc in (await execute(server, REMOTE))["locations"] if loc["name"] == "secret" for c in loc["copies"]
    ]
    fetch = "mutation($id: ID!) { fetchFromLocation(remoteCopyId: $id) { " + OP_PAYLOAD + " } }"
    fetched = await finished(server, (await execute(server, fetch, id=remote["id"]))["fetchFromLocation"])
    assert fetched["status"] == "FAILED", fetched
    assert_storage_full(fetched["error"], folder)

    disk.fill()
    uploaded = await upload_to(server, plain_copy["id"], "secret")
    assert uploaded["status"] == "FAILED", uploaded
    assert_storage_full(uploaded["error"], folder)
    imported = await finished(server, await start_import(server, encrypted_op["localCopy"]["id"]))
    assert imported["status"] == "FAILED", imported
    assert_storage_full(imported["error"], folder)

    plain_disk.fill()
    at_plain = await upload_to(server, plain_copy["id"], "plain")
    assert at_plain["status"] == "FAILED", at_plain
    assert_storage_full(at_plain["error"], f"location 'plain' ({plain_disk.path})")
    assert not [p.name for p in plain_disk.path.iterdir() if p.name.startswith(".") and p.name != ".filler"]
    # Nothing half-written is left: no hidden temp file, and the schedules' staging subfolder empty.
    assert not [p.name for p in disk.path.iterdir() if p.name.startswith(".") and p.name not in (".filler", ".staging")]
    assert not list((disk.path / ".staging").glob("*"))
    assert (await execute(server, POINTS.replace("first: 50", "first: 5")))["restorePoints"]["edges"]


async def test_full_temporary_folder_while_an_upload_is_spooled(small_disk, make_server_process) -> None:
    """A file part over 1 MiB is spooled to TMPDIR while the request arrives: a full one is
    507 STORAGE_FULL naming it (a JSON error, as every other), not a 500."""
    disk = small_disk("tmp", "8m")
    proc = make_server_process("data", TMPDIR=str(disk.path)).start()

    def post_upload() -> httpx.Response:
        operations = {"query": UPLOAD_QUERY, "variables": {"f": None}}
        files = {
            "operations": (None, json.dumps(operations)),
            "map": (None, json.dumps({"0": ["variables.f"]})),
            "0": ("big.zip", os.urandom(3 * 1024 * 1024)),
        }
        return httpx.post(proc.graphql_url, files=files, headers=auth_headers(proc), timeout=60)

    # The first spool settles Python's temporary folder on TMPDIR (on a full disk it would
    # quietly take /tmp instead): not a ZIP, so refused, and nothing kept.
    assert post_upload().json()["data"]["uploadLocalCopy"]["userErrors"][0]["code"] == "INVALID_ARCHIVE"
    disk.fill()
    response = post_upload()
    assert response.status_code == 507, (response.status_code, response.text[:300])
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "STORAGE_FULL", error
    assert error["message"].startswith(f"storage is full: could not write to the temporary folder ({disk.path})")
    disk.free()
    assert (await execute(proc, COPIES))["localCopies"] == []
