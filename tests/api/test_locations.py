"""Backup locations through the real server, against a real SeaweedFS and real folders:
upload, list, fetch, import, delete; and every fault: store down, wrong credentials, cancel
mid-upload, an object tampered with or truncated, thousands of objects, unicode names."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.api import create_and_wait, execute, wait_for_operation
from tests.support.config_file import Bucket, Share, write_config
from tests.support.in_process import InProcessServer
from tests.support.local_copies import exported_copy
from tests.support.seaweedfs import SECRET_KEY, SeaweedFS
from tests.support.server_process import free_port

# Its tests share the session's SeaweedFS with the other S3 modules: one xdist worker runs
# them all, so it is started once.
pytestmark = pytest.mark.xdist_group("seaweedfs")

OP = "operation { id status } userErrors { code message field }"
LOCATIONS = """{ locations { name kind encrypted reachable problem
    copies { id fileName sizeBytes modifiedAt encrypted restorePointId problem location { name } } } }"""


@dataclass
class Setup:
    server: InProcessServer
    bucket: str
    folder: Path
    site: Path  # the folder source


@pytest.fixture
def setup(seaweedfs: SeaweedFS, make_server: Callable[..., InProcessServer], tmp_path: Path) -> Setup:
    bucket = seaweedfs.new_bucket()
    config = write_config(tmp_path, Bucket(seaweedfs.endpoint, bucket), Share(tmp_path / "share"), settings=True)
    server = make_server(BACKUPS_CONFIG=str(config), BACKUPS_LOCATION_PART_BYTES=str(5 * 1024**2)).start()
    return Setup(server, bucket, tmp_path / "share", tmp_path / "site")


async def point_with_copy(server: InProcessServer, label: str = "Salle des fêtes") -> tuple[str, dict]:
    point = (await create_and_wait(server, label))["restorePoint"]
    return point["id"], await exported_copy(server, point["id"], "id fileName path sizeBytes")


async def run(server: InProcessServer, mutation: str, **variables: object) -> dict:
    """Start an operation and follow it to its end; its final state."""
    data = await execute(server, mutation, **variables)
    payload = next(iter(data.values()))
    assert payload["userErrors"] == [], payload
    return await wait_for_operation(server, payload["operation"]["id"])


async def upload(server: InProcessServer, copy_id: str, location: str) -> dict:
    return await run(
        server,
        f"mutation($c: ID!, $l: String!) {{ uploadToLocation(localCopyId: $c, location: $l) {{ {OP} }} }}",
        c=copy_id,
        l=location,
    )


async def fetch(server: InProcessServer, remote_id: str) -> dict:
    return await run(server, f"mutation($id: ID!) {{ fetchFromLocation(remoteCopyId: $id) {{ {OP} }} }}", id=remote_id)


async def location(server: InProcessServer, name: str) -> dict:
    found = [loc for loc in (await execute(server, LOCATIONS))["locations"] if loc["name"] == name]
    assert len(found) == 1
    return found[0]


def local_files(server: InProcessServer) -> set[str]:
    return set(os.listdir(server.data_dir / "local-copies"))


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def objects(store: SeaweedFS, bucket: str) -> list[str]:
    answer = store.client().list_objects_v2(Bucket=bucket)
    return [item["Key"] for item in answer.get("Contents", [])]


def pending_uploads(store: SeaweedFS, bucket: str) -> list[str]:
    return [u["Key"] for u in store.client().list_multipart_uploads(Bucket=bucket).get("Uploads", [])]


@pytest.mark.parametrize("target", ["bucket", "share"])
async def test_upload_list_fetch_import(setup: Setup, target: str) -> None:
    server = setup.server
    point_id, copy = await point_with_copy(server)
    original = sha(Path(copy["path"]))
    final = await upload(server, copy["id"], target)
    assert final["status"] == "SUCCEEDED" and final["kind"] == "UPLOAD_TO_LOCATION", final
    log = await execute(server, "query($id: ID!) { operation(id: $id) { log { message } } }", id=final["id"])
    assert any(original in line["message"] for line in log["operation"]["log"])  # read back and checked

    there = await location(server, target)
    assert (
        there["reachable"] and there["problem"] is None and there["kind"] == ("S3" if target == "bucket" else "FOLDER")
    )
    [remote] = there["copies"]
    assert remote["fileName"] == copy["fileName"] and remote["sizeBytes"] == copy["sizeBytes"]
    assert remote["restorePointId"] == point_id and remote["location"]["name"] == target
    where = await execute(
        server, "query($id: ID!) { restorePoint(id: $id) { remoteCopies { id location { name } } } }", id=point_id
    )
    assert {c["location"]["name"] for c in where["restorePoint"]["remoteCopies"]} == {"local", target}
    node = await execute(
        server, "query($id: ID!) { node(id: $id) { id ... on RemoteCopy { fileName } } }", id=remote["id"]
    )
    assert node["node"] == {"id": remote["id"], "fileName": copy["fileName"]}

    # The local copy gone (a new machine), the remote one comes back byte for byte.
    deleted = await execute(server, "mutation($id: ID!) { deleteLocalCopy(id: $id) { deletedId } }", id=copy["id"])
    assert deleted["deleteLocalCopy"]["deletedId"] == copy["id"]
    fetched = await fetch(server, remote["id"])
    assert fetched["status"] == "SUCCEEDED" and fetched["kind"] == "FETCH_FROM_LOCATION", fetched
    got = await execute(
        server,
        "query($id: ID!) { operation(id: $id) { localCopy { id path restorePointId problem } } }",
        id=fetched["id"],
    )
    local = got["operation"]["localCopy"]
    assert local["restorePointId"] == point_id and local["problem"] is None and sha(Path(local["path"])) == original
    imported = await run(
        server, f"mutation($id: ID!) {{ importLocalCopy(localCopyId: $id) {{ {OP} }} }}", id=local["id"]
    )
    assert imported["status"] == "SUCCEEDED" and imported["restorePoint"]["id"] == point_id


async def test_listing_is_the_truth(setup: Setup, seaweedfs: SeaweedFS) -> None:
    """A copy another server put there appears (unicode and spaces in its name); one deleted
    there disappears; deleteRemoteCopy deletes, and a second delete is NOT_FOUND."""
    server = setup.server
    point_id, copy = await point_with_copy(server)
    name = "Sauvegarde d'été 2026 — salle 1.zip"
    seaweedfs.client().put_object(Bucket=setup.bucket, Key=f"backups/{name}", Body=Path(copy["path"]).read_bytes())
    (setup.folder / name).write_bytes(Path(copy["path"]).read_bytes())
    seaweedfs.client().put_object(Bucket=setup.bucket, Key="backups/deeper/other.zip", Body=b"not listed")
    seaweedfs.client().put_object(Bucket=setup.bucket, Key="elsewhere.zip", Body=b"outside the prefix")

    for target in ("bucket", "share"):
        [remote] = (await location(server, target))["copies"]
        assert remote["fileName"] == name
        fetched = await fetch(server, remote["id"])
        assert fetched["status"] == "SUCCEEDED", fetched
        got = await execute(
            server, "query($id: ID!) { operation(id: $id) { localCopy { fileName restorePointId } } }", id=fetched["id"]
        )
        assert got["operation"]["localCopy"]["restorePointId"] == point_id
        assert got["operation"]["localCopy"]["fileName"].startswith("Sauvegarde d'été 2026")

    seaweedfs.client().delete_object(Bucket=setup.bucket, Key=f"backups/{name}")
    assert (await location(server, "bucket"))["copies"] == []
    [remote] = (await location(server, "share"))["copies"]
    query = "mutation($id: ID!) { deleteRemoteCopy(id: $id) { deletedId userErrors { code message } } }"
    assert (await execute(server, query, id=remote["id"]))["deleteRemoteCopy"]["deletedId"] == remote["id"]
    assert not (setup.folder / name).exists()
    again = (await execute(server, query, id=remote["id"]))["deleteRemoteCopy"]
    assert again["deletedId"] is None and again["userErrors"][0]["code"] == "NOT_FOUND"


@pytest.mark.parametrize("damage", ["tampered", "truncated"])
async def test_damaged_object_is_refused_at_fetch(setup: Setup, seaweedfs: SeaweedFS, damage: str) -> None:
    server = setup.server
    _, copy = await point_with_copy(server)
    assert (await upload(server, copy["id"], "bucket"))["status"] == "SUCCEEDED"
    key = f"backups/{copy['fileName']}"
    client = seaweedfs.client()
    head = client.head_object(Bucket=setup.bucket, Key=key)
    data = bytearray(client.get_object(Bucket=setup.bucket, Key=key)["Body"].read())
    if damage == "tampered":
        data[len(data) // 3] ^= 0xFF
    else:
        del data[len(data) // 2 :]
    client.put_object(Bucket=setup.bucket, Key=key, Body=bytes(data), Metadata=head["Metadata"])  # same metadata
    [remote] = (await location(server, "bucket"))["copies"]
    before = local_files(server)
    final = await fetch(server, remote["id"])
    assert final["status"] == "FAILED" and final["error"]["code"] == "INVALID_ARCHIVE", final
    assert "SHA-256" in final["error"]["message"] and "'bucket'" in final["error"]["message"]
    assert local_files(server) == before  # nothing kept, not even a temp file


async def test_truncated_file_in_a_folder_is_refused(setup: Setup) -> None:
    server = setup.server
    _, copy = await point_with_copy(server)
    assert (await upload(server, copy["id"], "share"))["status"] == "SUCCEEDED"
    path = setup.folder / copy["fileName"]
    path.write_bytes(path.read_bytes()[:-100])
    [remote] = (await location(server, "share"))["copies"]
    before = local_files(server)
    final = await fetch(server, remote["id"])
    assert final["status"] == "FAILED" and final["error"]["code"] == "INVALID_ARCHIVE", final
    assert local_files(server) == before


@pytest.mark.parametrize("fault", ["endpoint down", "wrong credentials"])
async def test_unavailable_location(
    seaweedfs: SeaweedFS, make_server: Callable[..., InProcessServer], tmp_path: Path, fault: str
) -> None:
    bucket = seaweedfs.new_bucket()
    if fault == "endpoint down":
        config = write_config(
            tmp_path,
            Bucket(f"http://127.0.0.1:{free_port()}", bucket),
            Share(tmp_path / "share"),
            settings=True,
            page=False,
        )
    else:
        config = write_config(
            tmp_path,
            Bucket(seaweedfs.endpoint, bucket),
            Share(tmp_path / "share"),
            settings=True,
            page=False,
            secret="not-the-secret",
        )
    server = make_server(BACKUPS_CONFIG=str(config)).start()
    _, copy = await point_with_copy(server)
    there = await location(server, "bucket")
    assert there["reachable"] is False and there["copies"] == []
    assert "location 'bucket' is unavailable" in there["problem"]
    assert "not-the-secret" not in there["problem"] and SECRET_KEY not in there["problem"]
    final = await upload(server, copy["id"], "bucket")
    assert final["status"] == "FAILED" and final["error"]["code"] == "LOCATION_UNAVAILABLE", final
    assert "'bucket'" in final["error"]["message"] and "not-the-secret" not in final["error"]["message"]
    assert objects(seaweedfs, bucket) == [] and pending_uploads(seaweedfs, bucket) == []
    # The other locations still answer.
    assert (await location(server, "share"))["reachable"] is True


async def test_cancel_mid_upload_leaves_no_object(
    seaweedfs: SeaweedFS, make_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    bucket = seaweedfs.new_bucket()
    config = write_config(
        tmp_path, Bucket(seaweedfs.endpoint, bucket), Share(tmp_path / "share"), settings=True, page=False
    )
    (tmp_path / "site" / "big.bin").write_bytes(os.urandom(16 * 1024**2))  # incompressible: 4 parts of 5 MiB
    server = make_server(
        BACKUPS_CONFIG=str(config), BACKUPS_LOCATION_PART_BYTES=str(5 * 1024**2), BACKUPS_TEST_ENTRY_DELAY="0.5"
    ).start()
    _, copy = await point_with_copy(server)
    data = await execute(
        server,
        f'mutation($c: ID!) {{ uploadToLocation(localCopyId: $c, location: "bucket") {{ {OP} }} }}',
        c=copy["id"],
    )
    op_id = data["uploadToLocation"]["operation"]["id"]

    # Mid-upload: a part is in the store (a multipart upload is open) and more are to come.
    for _ in range(600):
        state = await execute(server, "query($id: ID!) { operation(id: $id) { progress stage } }", id=op_id)
        if state["operation"]["stage"] == "Uploading" and pending_uploads(seaweedfs, bucket):
            break
        await asyncio.sleep(0.05)
    assert state["operation"]["progress"] < 0.9, state
    cancel = await execute(server, "mutation($id: ID!) { cancelOperation(id: $id) { userErrors { code } } }", id=op_id)
    assert cancel["cancelOperation"]["userErrors"] == []
    final = await wait_for_operation(server, op_id)
    assert final["status"] == "CANCELLED", final
    assert objects(seaweedfs, bucket) == [] and pending_uploads(seaweedfs, bucket) == []


async def test_thousands_of_objects_are_listed_page_by_page(
    seaweedfs: SeaweedFS, make_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    bucket = seaweedfs.new_bucket()
    config = write_config(
        tmp_path, Bucket(seaweedfs.endpoint, bucket), Share(tmp_path / "share"), settings=True, page=False
    )
    client = seaweedfs.client()
    names = [f"copy {index:04d} é.zip" for index in range(2100)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: client.put_object(Bucket=bucket, Key=f"backups/{n}", Body=b"z"), names))
    server = make_server(BACKUPS_CONFIG=str(config), BACKUPS_LOCATION_LIST_PAGE_SIZE="100").start()
    query = "{ locations { name reachable copies { id fileName sizeBytes } } }"  # no metadata asked: LIST only
    [there] = [loc for loc in (await execute(server, query))["locations"] if loc["name"] == "bucket"]
    assert there["reachable"], there
    assert sorted(c["fileName"] for c in there["copies"]) == names  # 21 pages of 100
    assert len({c["id"] for c in there["copies"]}) == len(names) and {c["sizeBytes"] for c in there["copies"]} == {1}
    client.delete_object(Bucket=bucket, Key=f"backups/{names[1234]}")
    [again] = [loc for loc in (await execute(server, query))["locations"] if loc["name"] == "bucket"]
    assert sorted(c["fileName"] for c in again["copies"]) == names[:1234] + names[1235:]


async def test_bad_requests_change_nothing(setup: Setup, seaweedfs: SeaweedFS) -> None:
    server = setup.server
    _, copy = await point_with_copy(server)
    cases = [
        ('uploadToLocation(localCopyId: $a, location: "nowhere")', copy["id"], "NOT_FOUND", "location"),
        ('uploadToLocation(localCopyId: $a, location: "local")', copy["id"], "INVALID_INPUT", "location"),
        ('uploadToLocation(localCopyId: $a, location: "bucket")', "lc_bm9uZS56aXA", "NOT_FOUND", "localCopyId"),
        ("fetchFromLocation(remoteCopyId: $a)", "rc_garbage", "NOT_FOUND", "remoteCopyId"),
        ("fetchFromLocation(remoteCopyId: $a)", "rc_YnVja2V0L21pc3Npbmcuemlw", "NOT_FOUND", "remoteCopyId"),
    ]
    before = local_files(server)
    for call, arg, code, field in cases:
        data = await execute(server, f"mutation($a: ID!) {{ {call} {{ {OP} }} }}", a=arg)
        payload = next(iter(data.values()))
        assert payload["operation"] is None and [(e["code"], e["field"]) for e in payload["userErrors"]] == [
            (code, field)
        ]
    assert objects(seaweedfs, setup.bucket) == [] and os.listdir(setup.folder) == [] and local_files(server) == before


@pytest.mark.parametrize("target", ["bucket", "share"])
async def test_a_taken_name_gets_a_new_one(setup: Setup, target: str) -> None:
    """Uploading the same copy twice keeps both (never over another copy): `-2`."""
    server = setup.server
    _, copy = await point_with_copy(server)
    for _ in range(2):
        assert (await upload(server, copy["id"], target))["status"] == "SUCCEEDED"
    stem = copy["fileName"][: -len(".zip")]
    names = sorted(c["fileName"] for c in (await location(server, target))["copies"])
    assert names == sorted([copy["fileName"], f"{stem}-2.zip"])


async def test_a_missing_folder_is_unavailable(setup: Setup) -> None:
    server = setup.server
    _, copy = await point_with_copy(server)
    setup.folder.rmdir()  # the disk is not mounted
    there = await location(server, "share")
    assert there["reachable"] is False and "location 'share' is unavailable" in there["problem"]
    final = await upload(server, copy["id"], "share")
    assert final["status"] == "FAILED" and final["error"]["code"] == "LOCATION_UNAVAILABLE", final
    assert not setup.folder.exists()  # not made behind the user's back
    assert (await location(server, "bucket"))["reachable"] is True


async def test_an_object_swapped_for_another_valid_copy_is_refused(setup: Setup, seaweedfs: SeaweedFS) -> None:
    """The ZIP inside is sound, but it is not what was uploaded: the recorded SHA-256 refuses it."""
    server = setup.server
    _, first = await point_with_copy(server, "first")
    (setup.site / "page.html").write_text("<h1>changed</h1>")
    _, second = await point_with_copy(server, "second")
    assert (await upload(server, first["id"], "bucket"))["status"] == "SUCCEEDED"
    key = f"backups/{first['fileName']}"
    client = seaweedfs.client()
    head = client.head_object(Bucket=setup.bucket, Key=key)
    client.put_object(Bucket=setup.bucket, Key=key, Body=Path(second["path"]).read_bytes(), Metadata=head["Metadata"])
    [remote] = (await location(server, "bucket"))["copies"]
    before = local_files(server)
    final = await fetch(server, remote["id"])
    assert final["status"] == "FAILED" and final["error"]["code"] == "INVALID_ARCHIVE", final
    assert "SHA-256 is not the one recorded" in final["error"]["message"]
    assert local_files(server) == before


HOSTILE_NAMES = {
    "L" * 250 + ".zip": "L" * 196 + ".zip",  # 254 characters: its temp name beside it did not fit
    "é" * 125 + ".zip": "é" * 98 + ".zip",  # 254 bytes of UTF-8, cut between characters
    "two\nlines.zip": "two_lines.zip",
    "tab\there\u202egnp.zip": "tab_here_gnp.zip",  # a right-to-left override shows "piz.png"
}


@pytest.mark.parametrize("target", ["share", "bucket"])
async def test_a_remote_name_that_is_no_local_name_is_fetched_under_a_safe_one(
    setup: Setup, seaweedfs: SeaweedFS, target: str
) -> None:
    """Copies put at a location by other means, under names a local file cannot or should not
    have: each is fetched under a safe name (its ending kept), checked, and importable."""
    server = setup.server
    point_id, copy = await point_with_copy(server)
    data = Path(copy["path"]).read_bytes()
    for name in HOSTILE_NAMES:
        if target == "share":
            (setup.folder / name).write_bytes(data)
        else:
            seaweedfs.client().put_object(Bucket=setup.bucket, Key=f"backups/{name}", Body=data)
    listed = {c["fileName"]: c for c in (await location(server, target))["copies"]}
    assert set(HOSTILE_NAMES) <= set(listed), sorted(listed)

    for name, expected in HOSTILE_NAMES.items():
        final = await fetch(server, listed[name]["id"])
        assert final["status"] == "SUCCEEDED", (name, final)
        got = await execute(
            server,
            "query($id: ID!) { operation(id: $id) { log { message } localCopy { fileName restorePointId } } }",
            id=final["id"],
        )
        fetched = got["operation"]["localCopy"]
        assert fetched == {"fileName": expected, "restorePointId": point_id}, (name, fetched)
        assert (server.data_dir / "local-copies" / expected).read_bytes() == data
        assert any(
            expected in line["message"] and "no control characters" in line["message"]
            for line in got["operation"]["log"]
        )
    again = await fetch(server, listed["L" * 250 + ".zip"]["id"])  # the name is taken: `-2`, still short
    state = await execute(server, "query($id: ID!) { operation(id: $id) { localCopy { fileName } } }", id=again["id"])
    assert state["operation"]["localCopy"]["fileName"] == "L" * 196 + "-2.zip"
    assert not [n for n in local_files(server) if n.startswith(".")]

    # The other way: a local copy put in the folder by hand under a long name goes there short.
    by_hand = server.data_dir / "local-copies" / ("M" * 250 + ".zip")
    by_hand.write_bytes(data)
    [listed_here] = [
        c
        for c in (await execute(server, "{ localCopies { id fileName } }"))["localCopies"]
        if c["fileName"] == by_hand.name
    ]
    assert (await upload(server, listed_here["id"], target))["status"] == "SUCCEEDED"
    assert "M" * 196 + ".zip" in {c["fileName"] for c in (await location(server, target))["copies"]}
