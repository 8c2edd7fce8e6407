"""Local copies through the real server: export, list, import, delete, upload."""

from __future__ import annotations

import asyncio
import shutil
import uuid
import zipfile
from pathlib import Path

from gql import Client, FileVar, GraphQLRequest
from gql.transport.aiohttp import AIOHTTPTransport

from tests.support.api import (
    auth_headers,
    create_and_wait,
    execute,
    update_settings,
    wait_for_operation,
)
from tests.support.archives import build, take_apart
from tests.support.blobs import stored_blobs
from tests.support.local_copies import exported_copy
from tests.support.server_process import ServerProcess

POINT = """query($id: ID!) { restorePoint(id: $id) { id label note origin createdAt createdBy sizeBytes
    itemCount checksum entries { source path sizeBytes sha256 mode } localCopies { id fileName } } }"""
COPIES = "{ localCopies { id fileName path sizeBytes modifiedAt restorePointId problem restorePoint { id } } }"
OP_PAYLOAD = "operation { id status } userErrors { code message field }"
EXPORTED = "id fileName sizeBytes restorePointId"


def copies_dir(server: ServerProcess) -> Path:
    return server.data_dir / "local-copies"


async def start_import(server: ServerProcess, copy_id: str) -> dict:
    data = await execute(
        server, f"mutation($id: ID!) {{ importLocalCopy(localCopyId: $id) {{ {OP_PAYLOAD} }} }}", id=copy_id
    )
    return data["importLocalCopy"]


async def exported_point(server: ServerProcess, label: str) -> tuple[dict, dict]:
    """A fresh restore point with unique content, and its exported copy."""
    await update_settings(server, "setup", {"siteName": f"Hall {uuid.uuid4().hex[:6]}"})
    final = await create_and_wait(server, label)
    point = (await execute(server, POINT, id=final["restorePoint"]["id"]))["restorePoint"]
    return point, await exported_copy(server, point["id"], EXPORTED)


async def test_round_trip_export_delete_import_is_exact(make_server) -> None:
    proc = make_server().start()
    await update_settings(proc, "audio", {"masterVolume": -7.25, "zones": [{"name": "Ünïcode ☃", "volume": -1}]})
    final = await create_and_wait(proc, "Before the Upgrade: v2/3")
    original = (await execute(proc, POINT, id=final["restorePoint"]["id"]))["restorePoint"]
    copy = await exported_copy(proc, original["id"], EXPORTED)

    assert copy["restorePointId"] == original["id"]
    assert copy["fileName"].endswith(".zip") and "Before-the-Upgrade-v2-3" in copy["fileName"]
    assert (copies_dir(proc) / copy["fileName"]).stat().st_mode & 0o777 == 0o600
    with zipfile.ZipFile(copies_dir(proc) / copy["fileName"]) as archive:  # any unzip tool reads it
        names = archive.namelist()
        assert names[0] == "manifest.json"
        assert {f"settings/{e['path']}" for e in original["entries"]} <= set(names)
    listed = (await execute(proc, POINT, id=original["id"]))["restorePoint"]["localCopies"]
    assert listed == [{"id": copy["id"], "fileName": copy["fileName"]}]

    deleted = await execute(proc, "mutation($id: ID!) { deleteRestorePoint(id: $id) { deletedId } }", id=original["id"])
    assert deleted["deleteRestorePoint"]["deletedId"] == original["id"]
    assert stored_blobs(proc) == set()
    orphan = (await execute(proc, COPIES))["localCopies"][0]
    assert orphan["restorePointId"] == original["id"] and orphan["restorePoint"] is None

    started = await start_import(proc, copy["id"])
    assert started["userErrors"] == []
    done = await wait_for_operation(proc, started["operation"]["id"])
    assert done["status"] == "SUCCEEDED", done
    imported = (await execute(proc, POINT, id=done["restorePoint"]["id"]))["restorePoint"]
    assert imported["origin"] == "IMPORTED"
    same = ("id", "label", "note", "createdAt", "createdBy", "sizeBytes", "itemCount", "checksum", "entries")
    assert {k: imported[k] for k in same} == {k: original[k] for k in same}
    assert len(stored_blobs(proc)) == original["itemCount"]

    # Importing it again must not duplicate it: the operation points at the one we have.
    again = await wait_for_operation(proc, (await start_import(proc, copy["id"]))["operation"]["id"])
    assert again["status"] == "SUCCEEDED" and again["restorePoint"]["id"] == original["id"]
    count = await execute(proc, "{ restorePoints { totalCount } }")
    assert count["restorePoints"]["totalCount"] == 1


async def test_folder_is_listed_as_it_is_on_disk(make_server) -> None:
    proc = make_server().start()
    point, copy = await exported_point(proc, "listed")
    folder = copies_dir(proc)
    shutil.copy(folder / copy["fileName"], folder / "copied by hand.zip")
    (folder / "notes.txt").write_text("not a copy")
    (folder / "broken.zip").write_bytes(b"PK\x03\x04 this is not really a zip")
    (folder / ".hidden.zip.partial").write_bytes(b"half written")

    listed = {c["fileName"]: c for c in (await execute(proc, COPIES))["localCopies"]}
    assert set(listed) == {copy["fileName"], "copied by hand.zip", "notes.txt", "broken.zip"}
    by_hand = listed["copied by hand.zip"]
    assert by_hand["restorePointId"] == point["id"] and by_hand["problem"] is None
    assert by_hand["restorePoint"] == {"id": point["id"]}
    assert "not a ZIP" in listed["notes.txt"]["problem"]
    assert "not a ZIP" in listed["broken.zip"]["problem"] and listed["broken.zip"]["restorePointId"] is None
    assert listed["notes.txt"]["path"] == str(folder / "notes.txt")

    one = await execute(proc, "query($id: ID!) { localCopy(id: $id) { fileName } }", id=by_hand["id"])
    assert one["localCopy"] == {"fileName": "copied by hand.zip"}

    refused = await start_import(proc, listed["broken.zip"]["id"])
    assert refused["operation"] is None
    assert refused["userErrors"][0]["code"] == "INVALID_ARCHIVE"
    assert "broken.zip" in refused["userErrors"][0]["message"]


async def test_delete_local_copy(make_server) -> None:
    proc = make_server().start()
    _, copy = await exported_point(proc, "to delete")
    mutation = "mutation($id: ID!) { deleteLocalCopy(id: $id) { deletedId userErrors { code field } } }"
    data = await execute(proc, mutation, id=copy["id"])
    assert data["deleteLocalCopy"] == {"deletedId": copy["id"], "userErrors": []}
    assert not (copies_dir(proc) / copy["fileName"]).exists()
    assert (await execute(proc, COPIES))["localCopies"] == []
    again = await execute(proc, mutation, id=copy["id"])
    assert again["deleteLocalCopy"] == {"deletedId": None, "userErrors": [{"code": "NOT_FOUND", "field": "id"}]}


async def test_unknown_and_foreign_ids_are_not_found(server: ServerProcess) -> None:
    for bad in ("lc_bm9uZQ", "lc_Li4vLi4vZXRjL3Bhc3N3ZA", "rp_x", "lc_!!!"):  # "none", "../../etc/passwd"
        data = await start_import(server, bad)
        assert data["userErrors"][0]["code"] == "NOT_FOUND", bad
        exported = await execute(
            server, f"mutation($id: ID!) {{ exportRestorePoint(restorePointId: $id) {{ {OP_PAYLOAD} }} }}", id=bad
        )
        assert exported["exportRestorePoint"]["userErrors"][0] == {
            "code": "NOT_FOUND",
            "field": "restorePointId",
            "message": f"no restore point with id {bad!r}",
        }
        assert (await execute(server, "query($id: ID!) { localCopy(id: $id) { id } }", id=bad))["localCopy"] is None


async def upload(server: ServerProcess, path: Path, filename: str | None = None) -> dict:
    query = """mutation($file: Upload!) { uploadLocalCopy(file: $file) {
        localCopy { id fileName restorePointId problem } userErrors { code message field } } }"""
    transport = AIOHTTPTransport(url=server.graphql_url, headers=auth_headers(server))
    async with Client(transport=transport) as session:
        with path.open("rb") as handle:
            request = GraphQLRequest(query, variable_values={"file": FileVar(handle, filename=filename or path.name)})
            result = await session.execute(request, upload_files=True)
    return result["uploadLocalCopy"]


async def test_upload_valid_copy_then_import_it(make_server, tmp_path: Path) -> None:
    source = make_server("source").start()
    point, copy = await exported_point(source, "travels")
    carried = tmp_path / "carried.zip"
    shutil.copy(copies_dir(source) / copy["fileName"], carried)

    target = make_server("target").start()
    payload = await upload(target, carried, filename="My Backup (1).zip")
    assert payload["userErrors"] == []
    uploaded = payload["localCopy"]
    assert uploaded["fileName"] == "My-Backup-1.zip"
    assert uploaded["restorePointId"] == point["id"] and uploaded["problem"] is None

    done = await wait_for_operation(target, (await start_import(target, uploaded["id"]))["operation"]["id"])
    assert done["status"] == "SUCCEEDED"
    imported = (await execute(target, POINT, id=point["id"]))["restorePoint"]
    assert imported["checksum"] == point["checksum"] and imported["entries"] == point["entries"]


async def test_invalid_upload_leaves_nothing_behind(make_server, tmp_path: Path) -> None:
    proc = make_server().start()
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"definitely not a zip file")
    payload = await upload(proc, junk)
    assert payload["localCopy"] is None
    assert payload["userErrors"][0]["code"] == "INVALID_ARCHIVE"
    assert payload["userErrors"][0]["field"] == "file"
    assert "not a ZIP" in payload["userErrors"][0]["message"]
    assert list(copies_dir(proc).iterdir()) == []  # not even a hidden temp file


async def test_upload_over_the_size_cap_is_refused(make_server, tmp_path: Path) -> None:
    proc = make_server(BACKUPS_MAX_UPLOAD_BYTES="10000").start()
    big = tmp_path / "big.zip"
    big.write_bytes(bytes(20_000))
    payload = await upload(proc, big)
    assert payload["localCopy"] is None
    assert payload["userErrors"][0]["code"] == "INVALID_INPUT"
    assert "10000 byte limit" in payload["userErrors"][0]["message"]
    assert list(copies_dir(proc).iterdir()) == []

    huge = tmp_path / "huge.zip"
    huge.write_bytes(bytes(3 * 1024 * 1024))  # past the cap and its framing allowance: 413 before parsing
    import httpx

    with huge.open("rb") as handle:
        response = httpx.post(
            proc.graphql_url,
            data={
                "operations": '{"query": "mutation($f: Upload!) { uploadLocalCopy(file: $f) { localCopy { id } } }", "variables": {"f": null}}',
                "map": '{"0": ["variables.f"]}',
            },
            files={"0": ("huge.zip", handle, "application/zip")},
            headers=auth_headers(proc),
        )
    assert response.status_code == 413
    assert list(copies_dir(proc).iterdir()) == []


async def test_restore_point_in_use_cannot_be_deleted(slow_server: ServerProcess) -> None:
    final = await create_and_wait(slow_server, "in use")
    point_id = final["restorePoint"]["id"]
    data = await execute(
        slow_server, f"mutation($id: ID!) {{ exportRestorePoint(restorePointId: $id) {{ {OP_PAYLOAD} }} }}", id=point_id
    )
    op_id = data["exportRestorePoint"]["operation"]["id"]
    refused = await execute(
        slow_server,
        "mutation($id: ID!) { deleteRestorePoint(id: $id) { deletedId userErrors { code field message } } }",
        id=point_id,
    )
    assert refused["deleteRestorePoint"]["deletedId"] is None
    assert refused["deleteRestorePoint"]["userErrors"][0]["code"] == "BUSY"
    assert (await wait_for_operation(slow_server, op_id))["status"] == "SUCCEEDED"
    still = await execute(slow_server, "query($id: ID!) { restorePoint(id: $id) { id } }", id=point_id)
    assert still["restorePoint"] == {"id": point_id}
    copy = await execute(slow_server, "query($id: ID!) { operation(id: $id) { localCopy { id } } }", id=op_id)
    deleted = await execute(
        slow_server, "mutation($id: ID!) { deleteRestorePoint(id: $id) { deletedId userErrors { code } } }", id=point_id
    )
    assert deleted["deleteRestorePoint"]["deletedId"] == point_id
    assert copy["operation"]["localCopy"]["id"].startswith("lc_")


async def test_lists_show_each_items_own_restore_point_and_copies(make_server) -> None:
    """Nested fields of list items are looked up in batches: each item still gets its own."""
    proc = make_server().start()
    first, first_copy = await exported_point(proc, "first")
    second, second_copy = await exported_point(proc, "second")
    bare = (await create_and_wait(proc, "no copy"))["restorePoint"]

    points = await execute(proc, "{ restorePoints(first: 10) { nodes { id localCopies { id restorePointId } } } }")
    copies_of = {p["id"]: p["localCopies"] for p in points["restorePoints"]["nodes"]}
    assert copies_of[first["id"]] == [{"id": first_copy["id"], "restorePointId": first["id"]}]
    assert copies_of[second["id"]] == [{"id": second_copy["id"], "restorePointId": second["id"]}]
    assert copies_of[bare["id"]] == []

    ops = await execute(
        proc, "{ operations(first: 20) { nodes { kind restorePoint { id } localCopy { id restorePointId } } } }"
    )
    exports = [op for op in ops["operations"]["nodes"] if op["kind"] == "EXPORT_RESTORE_POINT"]
    assert sorted((op["restorePoint"]["id"], op["localCopy"]["id"]) for op in exports) == sorted(
        [(first["id"], first_copy["id"]), (second["id"], second_copy["id"])]
    )
    for op in exports:
        assert op["localCopy"]["restorePointId"] == op["restorePoint"]["id"]

    listed = (await execute(proc, COPIES))["localCopies"]
    assert {c["id"]: c["restorePoint"]["id"] for c in listed} == {
        first_copy["id"]: first["id"],
        second_copy["id"]: second["id"],
    }


async def test_two_imports_of_one_copy_at_once_both_point_at_one_restore_point(make_server) -> None:
    # Each import pauses 1 s between looking for the restore point and saving it: started
    # together, both find it missing, and the second to save finds the first one's.
    proc = make_server(BACKUPS_TEST_ENTRY_DELAY="1").start()
    point, copy = await exported_point(proc, "imported twice at once")
    for _ in range(3):
        deleted = await execute(
            proc, "mutation($id: ID!) { deleteRestorePoint(id: $id) { deletedId } }", id=point["id"]
        )
        assert deleted["deleteRestorePoint"]["deletedId"] == point["id"]
        started = await asyncio.gather(start_import(proc, copy["id"]), start_import(proc, copy["id"]))
        assert [each["userErrors"] for each in started] == [[], []]
        ends = await asyncio.gather(*(wait_for_operation(proc, each["operation"]["id"]) for each in started))
        assert [(end["status"], end["error"]) for end in ends] == [("SUCCEEDED", None)] * 2, ends
        assert [end["restorePoint"]["id"] for end in ends] == [point["id"]] * 2
        count = await execute(proc, "{ restorePoints { totalCount nodes { id } } }")
        assert count["restorePoints"] == {"totalCount": 1, "nodes": [{"id": point["id"]}]}
        assert len(stored_blobs(proc)) == point["itemCount"]


async def test_an_import_whose_id_was_taken_meanwhile_by_other_content_gets_a_fresh_id(make_server) -> None:
    proc = make_server(BACKUPS_TEST_ENTRY_DELAY="1").start()
    point, copy = await exported_point(proc, "the real one")
    other, other_copy = await exported_point(proc, "other content")
    # A copy of `other` claiming `point`'s id: each import finds the id free, one saves first.
    parts = take_apart(copies_dir(proc) / other_copy["fileName"])
    parts.manifest["restorePoint"]["id"] = point["id"]
    build(parts, copies_dir(proc) / "claims-the-same-id.zip")
    claimant = next(
        c for c in (await execute(proc, COPIES))["localCopies"] if c["fileName"] == "claims-the-same-id.zip"
    )
    await execute(proc, "mutation($id: ID!) { deleteRestorePoint(id: $id) { deletedId } }", id=point["id"])
    started = await asyncio.gather(start_import(proc, copy["id"]), start_import(proc, claimant["id"]))
    ends = await asyncio.gather(*(wait_for_operation(proc, each["operation"]["id"]) for each in started))
    assert [(end["status"], end["error"]) for end in ends] == [("SUCCEEDED", None)] * 2, ends
    made = [end["restorePoint"]["id"] for end in ends]
    assert point["id"] in made and len(set(made)) == 2 and other["id"] not in made
    checksums = {(await execute(proc, POINT, id=made_id))["restorePoint"]["checksum"] for made_id in made}
    assert checksums == {point["checksum"], other["checksum"]}
    assert (await execute(proc, "{ restorePoints { totalCount } }"))["restorePoints"]["totalCount"] == 3


async def test_a_restore_point_can_be_deleted_as_soon_as_a_poll_reads_its_export_done(make_server) -> None:
    # Every operation's final write is held 3 s (a slow disk): a script that polls the export
    # and deletes its restore point once it reads SUCCEEDED must not get BUSY meanwhile.
    proc = make_server(BACKUPS_TEST_FINAL_WRITE_DELAY="3").start()
    point = (await create_and_wait(proc, "export, then delete"))["restorePoint"]["id"]
    started = await execute(
        proc, f"mutation($id: ID!) {{ exportRestorePoint(restorePointId: $id) {{ {OP_PAYLOAD} }} }}", id=point
    )
    op_id = started["exportRestorePoint"]["operation"]["id"]
    poll = "query($id: ID!) { operation(id: $id) { done status } }"
    while not (state := (await execute(proc, poll, id=op_id))["operation"])["done"]:
        await asyncio.sleep(0.02)
    assert state["status"] == "SUCCEEDED"
    delete = "mutation($id: ID!) { deleteRestorePoint(id: $id) { deletedId userErrors { code message } } }"
    deleted = (await execute(proc, delete, id=point))["deleteRestorePoint"]
    assert deleted == {"deletedId": point, "userErrors": []}
    # The export's end is stored all the same, and its copy is kept (of a deleted restore point).
    final = await wait_for_operation(proc, op_id)
    assert final["status"] == "SUCCEEDED"
    copies = (await execute(proc, COPIES))["localCopies"]
    assert [(c["restorePointId"], c["restorePoint"]) for c in copies] == [(point, None)]
