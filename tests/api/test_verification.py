"""verifyBackups through the real server: blobs read back (loose and packed) and checked, a
damaged or missing one found and named, put back from a good local copy; local copies read
whole; the results stored on each restore point and copy; health, refusal and /metrics."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, text

from tests.api.test_packs import index_rows, packs_dir, site_config
from tests.support.api import auth_headers, execute, log_lines, subscribe, wait_for_operation
from tests.support.api import create_and_wait as create
from tests.support.local_copies import exported_copy
from tests.support.server_process import ServerCommon

VERIFY = """mutation($ids: [ID!], $copies: Boolean, $percent: Int) {
    verifyBackups(restorePointIds: $ids, copies: $copies, readPercent: $percent) {
        operation { id kind status } userErrors { code message field } } }"""
POINT = """query($id: ID!) { restorePoint(id: $id) {
    verification { state verifiedAt problems repaired } entries { source path sha256 sizeBytes } } }"""
COPIES = "{ localCopies { id fileName verification { state problems repaired } } }"
HEALTH = "{ backupHealth { status problems issues { subjectKind subjectId } } }"
EXPORT = """mutation($id: ID!) { exportRestorePoint(restorePointId: $id) {
    operation { id } userErrors { code message field } } }"""
APPLY = """mutation($id: ID!, $confirm: String!) { applyRestorePoint(restorePointId: $id, confirm: $confirm) {
    operation { id } userErrors { code message field } } }"""
OPERATIONS = "{ operations(first: 100) { totalCount } }"


async def verify(server: ServerCommon, ids: list[str] | None = None, **args: Any) -> dict[str, Any]:
    """Run verifyBackups to its end (which must be a success): the final operation, with its log."""
    started = (await execute(server, VERIFY, ids=ids, **args))["verifyBackups"]
    assert started["userErrors"] == [], started
    assert started["operation"]["kind"] == "VERIFY_BACKUPS"
    final = await wait_for_operation(server, started["operation"]["id"])
    assert final["status"] == "SUCCEEDED", final
    return {**final, "log": await log_lines(server, final["id"])}


async def point(server: ServerCommon, point_id: str) -> dict[str, Any]:
    return (await execute(server, POINT, id=point_id))["restorePoint"]


def blob_path(server: ServerCommon, digest: str) -> Path:
    return server.data_dir / "blobs" / digest[:2] / digest[2:]


def flip(path: Path, at: int) -> None:
    with path.open("r+b") as file:
        file.seek(at)
        byte = file.read(1)
        file.seek(at)
        file.write(bytes([byte[0] ^ 0x01]))


def site_with_big_file(tmp_path: Path) -> tuple[Path, Path]:
    site, config = site_config(tmp_path)
    (site / "big.bin").write_bytes(os.urandom(3 * 1024 * 1024))  # over 1 MiB: a loose blob
    return site, config


async def entry(server: ServerCommon, point_id: str, path: str) -> dict[str, Any]:
    return next(e for e in (await point(server, point_id))["entries"] if e["path"] == path)


# -- blobs: loose, packed, gone, cut short ---------------------------------------------------


async def test_everything_ok_is_stored_as_ok_and_null_before(make_server, tmp_path: Path) -> None:
    _, config = site_with_big_file(tmp_path)
    server = make_server(BACKUPS_CONFIG=str(config)).start()
    a = (await create(server, "a"))["restorePoint"]["id"]
    copy = await exported_copy(server, a)
    assert (await point(server, a))["verification"] is None, "null until first verified"
    assert (await execute(server, COPIES))["localCopies"][0]["verification"] is None

    final = await verify(server)
    found = (await point(server, a))["verification"]
    assert found["state"] == "OK" and found["problems"] == [] and found["repaired"] == 0, found
    copies = (await execute(server, COPIES))["localCopies"]
    assert copies == [
        {"id": copy["id"], "fileName": copy["fileName"], "verification": {"state": "OK", "problems": [], "repaired": 0}}
    ]
    assert any(f"Local copy {copy['fileName']}: OK." == line for line in final["log"]), final["log"]
    assert (await execute(server, HEALTH))["backupHealth"]["status"] == "OK"


async def test_a_flipped_bit_in_a_loose_blob_is_repaired_from_a_local_copy(make_server, tmp_path: Path) -> None:
    _, config = site_with_big_file(tmp_path)
    server = make_server(BACKUPS_CONFIG=str(config)).start()
    a = (await create(server, "a"))["restorePoint"]["id"]
    copy = await exported_copy(server, a)
    big = await entry(server, a, "big.bin")
    path = blob_path(server, big["sha256"])
    good = path.read_bytes()
    flip(path, 1_000_000)

    final = await verify(server, [a])
    found = (await point(server, a))["verification"]
    assert found["state"] == "OK" and found["repaired"] == 1 and found["problems"] == [], found
    assert path.read_bytes() == good, "the blob's bytes are back"
    assert any(f"Blob {big['sha256']} is damaged" in line for line in final["log"])
    assert any(f"Blob {big['sha256']} repaired from local copy {copy['fileName']}" in line for line in final["log"]), (
        final["log"]
    )
    assert (await execute(server, HEALTH))["backupHealth"]["status"] == "OK"


async def test_a_flipped_bit_in_a_packed_range_is_damaged_named_critical_and_refused(
    make_server, tmp_path: Path
) -> None:
    _, config = site_config(tmp_path)
    server = make_server(BACKUPS_CONFIG=str(config)).start()
    a = (await create(server, "a"))["restorePoint"]["id"]
    b = (await create(server, "b"))["restorePoint"]["id"]  # the same content: shares every blob
    victim = await entry(server, a, "conf.d/main.yaml")
    pack, start, _ = index_rows(server)[1][victim["sha256"]]
    flip(packs_dir(server) / f"{pack}.pack", start + 3)

    final = await verify(server, [a, b])
    assert sum(f"Blob {victim['sha256']} is damaged" in line for line in final["log"]) == 1, "read once for both"
    assert any("no good copy holds it" in line for line in final["log"])
    for point_id in (a, b):
        found = (await point(server, point_id))["verification"]
        assert found["state"] == "DAMAGED" and found["repaired"] == 0, found
        assert found["problems"] == [
            f"site/conf.d/main.yaml: damaged (its bytes in pack {pack} (at {start}) do not match its SHA-256)"
        ]

    health = (await execute(server, HEALTH))["backupHealth"]
    assert health["status"] == "CRITICAL"
    assert {"subjectKind": "RESTORE_POINT", "subjectId": a} in health["issues"]
    assert any(a in problem and "site/conf.d/main.yaml" in problem for problem in health["problems"])

    before = (await execute(server, OPERATIONS))["operations"]["totalCount"]
    for mutation, name in ((EXPORT, "exportRestorePoint"), (APPLY, "applyRestorePoint")):
        extra = {"confirm": a} if name == "applyRestorePoint" else {}
        refused = (await execute(server, mutation, id=a, **extra))[name]
        assert refused["operation"] is None
        (error,) = refused["userErrors"]
        assert (
            error["code"] == "CONTENT_DAMAGED" and a in error["message"] and "site/conf.d/main.yaml" in error["message"]
        )
    assert (await execute(server, OPERATIONS))["operations"]["totalCount"] == before, "nothing started"
    assert not list((server.data_dir / "local-copies").glob("*.zip"))


async def test_a_removed_blob_file_is_missing(make_server, tmp_path: Path) -> None:
    _, config = site_with_big_file(tmp_path)
    server = make_server(BACKUPS_CONFIG=str(config)).start()
    a = (await create(server, "a"))["restorePoint"]["id"]
    big = await entry(server, a, "big.bin")
    blob_path(server, big["sha256"]).unlink()

    await verify(server, [a], copies=False)
    found = (await point(server, a))["verification"]
    assert found["state"] == "MISSING", found
    assert found["problems"] == ["site/big.bin: missing (its file is gone from the content store)"]


async def test_a_pack_cut_short_is_damaged_naming_each_item(make_server, tmp_path: Path) -> None:
    _, config = site_config(tmp_path)
    server = make_server(BACKUPS_CONFIG=str(config)).start()
    a = (await create(server, "a"))["restorePoint"]["id"]
    rows = index_rows(server)[1]
    (pack,) = {pack for pack, _, _ in rows.values()}
    cut = sorted(start for _, start, _ in rows.values())[-2]  # the last two blobs lose their bytes
    lost = {digest for digest, (_, start, size) in rows.items() if start + size > cut}
    with (packs_dir(server) / f"{pack}.pack").open("r+b") as file:
        file.truncate(cut)

    await verify(server, [a], copies=False)
    found = (await point(server, a))["verification"]
    assert found["state"] == "DAMAGED" and len(found["problems"]) >= len(lost), found
    assert all("is cut short" in problem for problem in found["problems"]), found


async def test_a_cut_pack_is_repaired_from_a_copy_exported_before(make_server, tmp_path: Path) -> None:
    _, config = site_config(tmp_path)
    server = make_server(BACKUPS_CONFIG=str(config)).start()
    a = (await create(server, "a"))["restorePoint"]["id"]
    copy = await exported_copy(server, a)
    rows = index_rows(server)[1]
    (pack,) = {pack for pack, _, _ in rows.values()}
    cut = sorted(start for _, start, _ in rows.values())[-2]
    lost = {digest for digest, (_, start, size) in rows.items() if start + size > cut}
    with (packs_dir(server) / f"{pack}.pack").open("r+b") as file:
        file.truncate(cut)

    final = await verify(server, [a])
    found = (await point(server, a))["verification"]
    assert found["state"] == "OK" and found["repaired"] == len(lost), (found, final["log"])
    for digest in lost:
        assert hashlib.sha256(blob_path(server, digest).read_bytes()).hexdigest() == digest, "put back loose"
        assert digest not in index_rows(server)[1], "its packed row is gone: reads go to the loose file"
        assert any(f"Blob {digest} repaired from local copy {copy['fileName']}" in line for line in final["log"])
    again = await verify(server, [a])
    assert (await point(server, a))["verification"]["state"] == "OK", again["log"]
    exported = await exported_copy(server, a)  # exports read the repaired blobs
    assert exported["fileName"] != copy["fileName"]


async def test_a_repair_never_writes_content_that_does_not_match(make_server, tmp_path: Path) -> None:
    """The only copy holding the blob is itself damaged in that member: nothing is written."""
    _, config = site_with_big_file(tmp_path)
    server = make_server(BACKUPS_CONFIG=str(config)).start()
    a = (await create(server, "a"))["restorePoint"]["id"]
    copy = await exported_copy(server, a)
    big = await entry(server, a, "big.bin")
    path = blob_path(server, big["sha256"])
    zip_path = server.data_dir / "local-copies" / copy["fileName"]
    data = zip_path.read_bytes()
    at = data.index(path.read_bytes()[:4096]) + 2_000_000  # inside the stored member's bytes
    flip(zip_path, at)
    flip(path, 10)
    damaged = path.read_bytes()

    final = await verify(server, [a])
    assert (await point(server, a))["verification"]["state"] == "DAMAGED"
    assert path.read_bytes() == damaged, "nothing was written from a member that does not match"
    assert any("cannot be used" in line and copy["fileName"] in line for line in final["log"]), final["log"]
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")], "no temporary file left"


# -- local copies read whole ----------------------------------------------------------------------


async def copy_verification(server: ServerCommon, copy_id: str) -> dict[str, Any]:
    copies = {c["id"]: c for c in (await execute(server, COPIES))["localCopies"]}
    return copies[copy_id]["verification"]


async def test_local_copies_flipped_cut_short_or_replaced_are_damaged(make_server, tmp_path: Path) -> None:
    site, config = site_with_big_file(tmp_path)
    server = make_server(BACKUPS_CONFIG=str(config)).start()
    a = (await create(server, "a"))["restorePoint"]["id"]
    (site / "conf.d" / "main.yaml").write_text("listen: 8080\n")
    b = (await create(server, "b"))["restorePoint"]["id"]
    folder = server.data_dir / "local-copies"
    flipped, cut, replaced, other = [await exported_copy(server, p) for p in (a, a, a, b)]
    flip(folder / flipped["fileName"], (folder / flipped["fileName"]).stat().st_size // 2)
    with (folder / cut["fileName"]).open("r+b") as file:
        file.truncate((folder / cut["fileName"]).stat().st_size - 100)
    shutil.copyfile(folder / other["fileName"], folder / replaced["fileName"])

    final = await verify(server, [a, b])
    assert (await copy_verification(server, other["id"]))["state"] == "OK"
    for copy in (flipped, cut, replaced):
        found = await copy_verification(server, copy["id"])
        assert found["state"] == "DAMAGED", (copy, found)
        assert found["problems"][0].startswith(copy["fileName"] + ": "), found
        assert any(
            f"Local copy {copy['fileName']} is DAMAGED" in line and "export its restore point again" in line
            for line in final["log"]
        )
    assert f"holds restore point {b}" in (await copy_verification(server, replaced["id"]))["problems"][0]
    assert (await point(server, a))["verification"]["state"] == "OK", "the restore point itself is fine"
    health = (await execute(server, HEALTH))["backupHealth"]
    assert health["status"] == "CRITICAL"
    assert {"subjectKind": "LOCAL_COPY", "subjectId": flipped["id"]} in health["issues"]


async def test_an_encrypted_copy_is_decrypted_and_checked(make_server, tmp_path: Path) -> None:
    _, config = site_config(tmp_path)
    server = make_server(BACKUPS_CONFIG=str(config)).start()
    a = (await create(server, "a"))["restorePoint"]["id"]
    good = await exported_copy(server, a, encrypt=True)
    bad = await exported_copy(server, a, encrypt=True)
    path = server.data_dir / "local-copies" / bad["fileName"]
    flip(path, path.stat().st_size // 2)

    await verify(server, [a])
    assert (await copy_verification(server, good["id"]))["state"] == "OK"
    assert (await copy_verification(server, bad["id"]))["state"] == "DAMAGED"


# -- bad input --------------------------------------------------------------------------------------


async def test_unknown_ids_and_a_share_outside_1_to_100_start_nothing(make_server, tmp_path: Path) -> None:
    _, config = site_config(tmp_path)
    server = make_server(BACKUPS_CONFIG=str(config)).start()
    a = (await create(server, "a"))["restorePoint"]["id"]
    before = (await execute(server, OPERATIONS))["operations"]["totalCount"]
    cases = [
        ({"ids": [a, "rp_doesnotexist"]}, "NOT_FOUND", "restorePointIds", "rp_doesnotexist"),
        ({"ids": ["not an id"]}, "NOT_FOUND", "restorePointIds", "not an id"),
        ({"percent": 0}, "INVALID_INPUT", "readPercent", "from 1 to 100"),
        ({"percent": 101}, "INVALID_INPUT", "readPercent", "from 1 to 100"),
    ]
    for args, code, field, said in cases:
        payload = (await execute(server, VERIFY, **args))["verifyBackups"]
        assert payload["operation"] is None, payload
        (error,) = payload["userErrors"]
        assert (error["code"], error["field"]) == (code, field) and said in error["message"], error
    assert (await execute(server, OPERATIONS))["operations"]["totalCount"] == before, "nothing started"
    assert (await point(server, a))["verification"] is None


async def test_a_partial_share_rotates_so_successive_runs_read_every_blob(make_server, tmp_path: Path) -> None:
    _, config = site_config(tmp_path)
    server = make_server(BACKUPS_CONFIG=str(config)).start()
    a = (await create(server, "a"))["restorePoint"]["id"]
    rows = index_rows(server)[1]
    last = max(rows)  # in SHA-256 order, the last blob: the first half of the rotation skips it
    pack, start, _ = rows[last]
    flip(packs_dir(server) / f"{pack}.pack", start)

    first = await verify(server, [a], copies=False, percent=50)
    assert (await point(server, a))["verification"]["state"] == "OK", first["log"]
    second = await verify(server, [a], copies=False, percent=50)
    assert (await point(server, a))["verification"]["state"] == "DAMAGED", second["log"]
    assert any(f"Blob {last} is damaged" in line for line in second["log"])
    # Found wrong once, the restore point is read whole from then on, whatever the share.
    third = await verify(server, [a], copies=False, percent=1)
    assert (await point(server, a))["verification"]["state"] == "DAMAGED", third["log"]


# -- /metrics ---------------------------------------------------------------------------------------


def metric_values(text: str) -> dict[str, float]:
    return {s.name: s.value for family in text_string_to_metric_families(text) for s in family.samples}


async def test_metrics_count_what_verification_read_found_and_repaired(make_server, tmp_path: Path) -> None:
    _, config = site_with_big_file(tmp_path)
    server = make_server(BACKUPS_CONFIG=str(config)).start()
    a = (await create(server, "a"))["restorePoint"]["id"]
    await exported_copy(server, a)
    big = await entry(server, a, "big.bin")
    flip(blob_path(server, big["sha256"]), 5)
    await verify(server, [a])
    victim = await entry(server, a, "conf.d/main.yaml")
    pack, start, _ = index_rows(server)[1][victim["sha256"]]
    flip(packs_dir(server) / f"{pack}.pack", start)
    shutil.rmtree(server.data_dir / "local-copies")
    (server.data_dir / "local-copies").mkdir()
    await verify(server, [a])

    async with httpx.AsyncClient() as client:
        text = (await client.get(f"{server.url}/metrics", headers=auth_headers(server))).text
    values = metric_values(text)
    assert values["backups_verification_damaged"] == 1
    assert values["backups_verification_repaired_total"] == 1
    assert values["backups_verification_read_bytes_total"] >= 2 * big["sizeBytes"]
    assert values["backups_verification_last_timestamp_seconds"] > 0


async def test_a_flipped_bit_in_a_pack_header_is_named_in_the_log(make_server, tmp_path: Path) -> None:
    _, config = site_config(tmp_path)
    server = make_server(BACKUPS_CONFIG=str(config)).start()
    a = (await create(server, "a"))["restorePoint"]["id"]
    (pack,) = {pack for pack, _, _ in index_rows(server)[1].values()}
    flip(packs_dir(server) / f"{pack}.pack", 2)

    final = await verify(server, [a], copies=False)
    assert any(f"pack {pack}: its header is damaged" in line for line in final["log"]), final["log"]
    assert (await point(server, a))["verification"]["state"] == "OK", "every blob in it still reads back whole"


# -- racing a delete ------------------------------------------------------------------------------

DELETE = "mutation($id: ID!) { deleteRestorePoint(id: $id) { deletedId userErrors { code message } } }"
CANCEL = "mutation($id: ID!) { cancelOperation(id: $id) { operation { status } userErrors { code } } }"


async def test_a_delete_racing_a_verification_is_busy_until_it_ends(make_server, tmp_path: Path) -> None:
    _, config = site_config(tmp_path)
    # A test pause before the blobs are read, ended by the cancel below.
    server = make_server(BACKUPS_CONFIG=str(config), BACKUPS_TEST_PAUSE_AT="verify-read").start()
    a = (await create(server, "a"))["restorePoint"]["id"]
    started = (await execute(server, VERIFY, ids=[a]))["verifyBackups"]
    op_id = started["operation"]["id"]
    await wait_until_logged(server, op_id, "Test pause at step 'verify-read'")

    refused = (await execute(server, DELETE, id=a))["deleteRestorePoint"]
    assert refused["deletedId"] is None and refused["userErrors"][0]["code"] == "BUSY", refused
    await execute(server, CANCEL, id=op_id)
    final = await wait_for_operation(server, op_id)
    assert final["status"] == "CANCELLED", final
    assert (await point(server, a))["verification"] is None, "a cancelled run stores nothing"
    assert (await execute(server, DELETE, id=a))["deleteRestorePoint"]["deletedId"] == a
    gone = (await execute(server, VERIFY, ids=[a]))["verifyBackups"]
    assert gone["userErrors"][0]["code"] == "NOT_FOUND", gone


async def wait_until_logged(server: ServerCommon, op_id: str, text: str) -> None:
    """Follow the operation's log (subscription) until a line holds `text`."""
    async for event in subscribe(server, "subscription($id: ID!) { operationLog(id: $id) { message } }", id=op_id):
        if text in event["operationLog"]["message"]:
            return
    raise AssertionError(f"the log ended without {text!r}")


async def test_a_blob_is_repaired_from_an_encrypted_local_copy(make_server, tmp_path: Path) -> None:
    _, config = site_with_big_file(tmp_path)
    server = make_server(BACKUPS_CONFIG=str(config)).start()
    a = (await create(server, "a"))["restorePoint"]["id"]
    copy = await exported_copy(server, a, encrypt=True)
    big = await entry(server, a, "big.bin")
    path = blob_path(server, big["sha256"])
    good = path.read_bytes()
    path.unlink()

    final = await verify(server, [a])
    found = (await point(server, a))["verification"]
    assert found["state"] == "OK" and found["repaired"] == 1, (found, final["log"])
    assert path.read_bytes() == good
    assert any(f"repaired from local copy {copy['fileName']}" in line for line in final["log"]), final["log"]
    assert not [p for p in (server.data_dir / "local-copies").iterdir() if p.name.startswith(".")], "temp removed"


async def test_no_verification_within_the_configured_days_is_a_warning(make_server, tmp_path: Path) -> None:
    _, config = site_config(tmp_path)
    server = make_server(BACKUPS_CONFIG=str(config), BACKUPS_VERIFICATION_WARNING_DAYS="7").start()
    await create(server, "a")
    assert (await execute(server, HEALTH))["backupHealth"]["status"] == "OK", "a new restore point had no time yet"

    server.clock.advance(8 * 86400)
    health = (await execute(server, HEALTH))["backupHealth"]
    assert health["status"] == "WARNING", health
    assert health["issues"] == [{"subjectKind": "VERIFICATION", "subjectId": "verifyBackups"}]
    assert "none has run yet" in health["problems"][0]

    await verify(server, copies=False)
    assert (await execute(server, HEALTH))["backupHealth"]["status"] == "OK"
    server.clock.advance(8 * 86400)
    health = (await execute(server, HEALTH))["backupHealth"]
    assert health["status"] == "WARNING" and "the last one finished at" in health["problems"][0], health


async def test_a_manifest_changed_in_the_database_is_damaged(make_server, tmp_path: Path) -> None:
    _, config = site_config(tmp_path)
    server = make_server(BACKUPS_CONFIG=str(config)).start()
    a = (await create(server, "a"))["restorePoint"]["id"]
    engine = create_engine(server.database.url)
    try:
        with engine.begin() as connection:  # one entry's mode changed behind the server's back
            connection.execute(text("UPDATE manifest_entry SET mode = 511 WHERE path = 'conf.d/main.yaml'"))
    finally:
        engine.dispose()

    await verify(server, [a], copies=False)
    found = (await point(server, a))["verification"]
    assert found["state"] == "DAMAGED" and found["problems"] == ["the manifest's checksum does not match its entries"]
