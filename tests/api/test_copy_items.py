"""A local copy's items read in place through the real server, plain and encrypted (decrypted as a
stream), without importing it: LocalCopy.items (browse) and createItemDownloadUrl(localCopyId:)
(each kind), a copy encrypted to a key this server lacks (KEY_MISSING), a damaged copy (never
wrong bytes), and bad inputs; no restore point is ever added."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.storage.encryption import Keyring
from tests.api.test_item_downloads import BIG, DEEP_BYTES, FOLDER, GREETING, ROWS, ask, start_server
from tests.support.api import auth_headers, create_and_wait, execute
from tests.support.apply import modules, restore_points
from tests.support.in_process import InProcessServer
from tests.support.local_copies import exported_copy

pytestmark = pytest.mark.xdist_group("copy_items")

LOCAL_COPIES = "{ localCopies { id fileName } }"
COPY_ITEMS = """query($id: ID!, $source: String, $path: String, $first: Int, $after: String) { localCopy(id: $id) {
    items(source: $source, path: $path, first: $first, after: $after) {
        totalCount pageInfo { hasNextPage endCursor } nodes { source path kind sizeBytes sha256 rowCount } } } }"""


@pytest.fixture(scope="module")
def copies(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[InProcessServer, dict[str, str]]]:
    """A server with one restore point exported twice, plain and encrypted; the restore point
    itself is deleted, so every read below can only come out of the copies."""
    import asyncio

    async def prepare(proc: InProcessServer) -> dict[str, str]:
        point = (await create_and_wait(proc, "to copy"))["restorePoint"]["id"]
        plain = (await exported_copy(proc, point))["id"]
        sealed = (await exported_copy(proc, point, encrypt=True))["id"]
        deleted = await execute(proc, "mutation($id: ID!) { deleteRestorePoint(id: $id) { deletedId } }", id=point)
        assert deleted["deleteRestorePoint"]["deletedId"] == point
        return {"plain": plain, "encrypted": sealed}

    proc = start_server(tmp_path_factory.mktemp("copy-item-downloads"))
    ids = asyncio.run(prepare(proc))
    yield proc, ids
    proc.close()


async def url_of(proc: InProcessServer, copy_id: str, source: str, path: str) -> str:
    payload = await ask(proc, lc=copy_id, source=source, path=path)
    assert payload["userErrors"] == [], payload
    return str(payload["signedUrl"]["url"])


@pytest.mark.parametrize("which", ["plain", "encrypted"])
async def test_each_kind_comes_out_of_the_copy_without_importing_it(copies, which: str) -> None:
    proc, ids = copies
    copy = ids[which]
    before = await restore_points(proc)

    big = httpx.get(await url_of(proc, copy, "site", "big.bin"), timeout=60)
    assert big.status_code == 200 and big.content == BIG
    assert big.headers["content-length"] == str(len(BIG))
    ranged = httpx.get(await url_of(proc, copy, "site", "big.bin"), headers={"Range": "bytes=10-19"}, timeout=60)
    assert ranged.status_code == 206 and ranged.content == BIG[10:20]

    greeting = httpx.get(await url_of(proc, copy, "site", GREETING), timeout=60)
    assert greeting.content == b"Hallo, Welt!\n"

    folder = httpx.get(await url_of(proc, copy, "site", FOLDER), timeout=60)
    assert folder.status_code == 200 and folder.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(folder.content))
    assert archive.testzip() is None
    assert archive.read("sub/deep.bin") == DEEP_BYTES
    assert archive.read("Grüße an alle.txt") == b"Hallo, Welt!\n"
    assert "sub/empty/" in archive.namelist()

    module = httpx.get(await url_of(proc, copy, "settings", "audio.json"), timeout=60)
    assert json.loads(module.content) == (await modules(proc))["audio"]  # the store is unchanged since

    table = httpx.get(await url_of(proc, copy, "appdb", "things"), timeout=60)
    rows = list(csv.reader(io.StringIO(table.content.decode(), newline="")))
    assert rows[0] == ["id", "name", "note", "data", "ratio"] and len(rows) == 1 + len(ROWS)

    assert await restore_points(proc) == before  # nothing imported, no restore point added


async def test_unknown_items_and_bad_paths_in_a_copy_get_no_link(copies) -> None:
    proc, ids = copies

    async def refused(code: str, field: str, **variables: Any) -> None:
        payload = await ask(proc, **variables)
        assert payload["signedUrl"] is None
        assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [(code, field)], payload

    for copy in ids.values():
        await refused("NOT_FOUND", "path", lc=copy, source="site", path="no such.txt")
        await refused("NOT_FOUND", "source", lc=copy, source="nosuch", path="a")
        await refused("INVALID_INPUT", "path", lc=copy, source="site", path="../big.bin")
        await refused("INVALID_INPUT", "path", lc=copy, source="site", path="/big.bin")
    await refused("NOT_FOUND", "localCopyId", lc="lc_bm9uZS56aXA", source="site", path="big.bin")


def sealed_for_another_server(proc: InProcessServer, plain_name: str, tmp: Path) -> str:
    """The plain copy encrypted to a key this server does not hold, put beside the others."""
    folder = proc.data_dir / "local-copies"
    target = folder / plain_name.replace(".zip", "-foreign.zip.age")
    with target.open("wb") as out:
        Keyring(tmp / "another-server").encrypt(folder / plain_name, out)
    return target.name


async def test_a_copy_encrypted_to_another_key_is_key_missing(copies, tmp_path: Path) -> None:
    proc, ids = copies
    listed = {c["id"]: c["fileName"] for c in (await execute(proc, LOCAL_COPIES))["localCopies"]}
    foreign = sealed_for_another_server(proc, listed[ids["plain"]], tmp_path)
    try:
        copy = next(c["id"] for c in (await execute(proc, LOCAL_COPIES))["localCopies"] if c["fileName"] == foreign)
        payload = await ask(proc, lc=copy, source="site", path="big.bin")
        assert payload["signedUrl"] is None
        [error] = payload["userErrors"]
        assert error["code"] == "KEY_MISSING", error
        assert "identity" in error["message"]  # it names this server's identity, for `backups key import`
    finally:
        (proc.data_dir / "local-copies" / foreign).unlink()


async def test_a_damaged_plain_copy_sends_no_wrong_bytes(make_server, tmp_path: Path) -> None:
    proc = start_server(tmp_path / "srv")
    try:
        point = (await create_and_wait(proc, "to damage"))["restorePoint"]["id"]
        copy = await exported_copy(proc, point)
        url = await url_of(proc, copy["id"], "site", "big.bin")
        path = proc.data_dir / "local-copies" / copy["fileName"]
        data = bytearray(path.read_bytes())
        at = data.find(BIG[1000:1064])  # big.bin is stored as it is (random bytes do not compress)
        assert at > 0
        data[at] ^= 0xFF
        path.write_bytes(bytes(data))
        response = httpx.get(url, timeout=60)
        assert response.status_code == 500
        assert BIG[:4096] not in response.content
        [error] = response.json()["errors"]
        assert error["extensions"]["code"] == "CONTENT_DAMAGED" and "big.bin" in error["message"]
    finally:
        proc.close()


async def execute_raw(proc: InProcessServer, query: str, **variables: Any) -> dict[str, Any]:
    """The whole answer (data and errors) of a query over HTTP, as a client gets it."""
    async with httpx.AsyncClient(timeout=60) as client:
        response = await client.post(
            proc.graphql_url, json={"query": query, "variables": variables}, headers=auth_headers(proc)
        )
    return dict(response.json())


async def copy_items(proc: InProcessServer, copy_id: str, **variables: Any) -> dict[str, Any]:
    for name in ("source", "path", "first", "after"):
        variables.setdefault(name, None)
    return dict((await execute(proc, COPY_ITEMS, id=copy_id, **variables))["localCopy"]["items"])


@pytest.mark.parametrize("which", ["plain", "encrypted"])
async def test_a_copy_is_browsed_folder_by_folder_without_importing_it(copies, which: str) -> None:
    proc, ids = copies
    copy = ids[which]
    before = await restore_points(proc)
    top = await copy_items(proc, copy)
    assert {(n["source"], n["path"], n["kind"]) for n in top["nodes"]} >= {
        ("site", "big.bin", "FILE"),
        ("site", FOLDER, "FOLDER"),
        ("settings", "audio.json", "MODULE"),
        ("appdb", "things", "TABLE"),
    }
    assert [(n["source"], n["path"]) for n in top["nodes"]] == sorted((n["source"], n["path"]) for n in top["nodes"])
    big = next(n for n in top["nodes"] if n["path"] == "big.bin")
    assert big["sizeBytes"] == len(BIG) and big["sha256"] == hashlib.sha256(BIG).hexdigest()
    table = next(n for n in top["nodes"] if n["path"] == "things")
    assert table["rowCount"] is None  # a copy keeps no row counts

    sources = await execute(proc, "query($id: ID!) { localCopy(id: $id) { sources } }", id=copy)
    assert sources["localCopy"]["sources"] == sorted({n["source"] for n in top["nodes"]})
    assert {"appdb", "settings", "site"} <= set(sources["localCopy"]["sources"])

    inside = await copy_items(proc, copy, source="site", path=FOLDER)
    assert sorted(n["path"] for n in inside["nodes"]) == sorted(
        [GREETING, f"{FOLDER}/sub", f"{FOLDER}/run.sh", f"{FOLDER}/link"]
    )
    assert {n["path"]: n["kind"] for n in inside["nodes"]}[f"{FOLDER}/link"] == "SYMLINK"

    seen, after = [], None  # page by page, each item once, in order
    while True:
        page = await copy_items(proc, copy, source="site", path=FOLDER, first=2, after=after)
        seen += [n["path"] for n in page["nodes"]]
        assert page["totalCount"] == 4
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == [n["path"] for n in inside["nodes"]]
    assert await restore_points(proc) == before  # nothing imported


async def test_browsing_a_copy_refuses_what_it_does_not_hold(copies) -> None:
    proc, ids = copies
    for variables, code, words in [
        ({"source": "site", "path": "no such"}, "NOT_FOUND", "holds nothing at 'no such'"),
        ({"source": "nosuch"}, "NOT_FOUND", "holds no source named 'nosuch'"),
        ({"source": "site", "path": "big.bin"}, "INVALID_INPUT", "not a folder"),
        ({"source": "site", "path": "../x"}, "INVALID_INPUT", "'..'"),
        ({"path": FOLDER}, "INVALID_INPUT", "give `source`"),
        ({"source": "site", "after": "bm90IG91cnM"}, "INVALID_INPUT", "cursor"),
    ]:
        asked = {"id": ids["encrypted"], "source": None, "path": None, "first": None, "after": None, **variables}
        response = await execute_raw(proc, COPY_ITEMS, **asked)
        [error] = response["errors"]
        assert error["extensions"]["code"] == code, (variables, error)
        assert words in error["message"], (variables, error)


async def test_browsing_a_copy_encrypted_to_another_key_is_key_missing(copies, tmp_path: Path) -> None:
    proc, ids = copies
    listed = {c["id"]: c["fileName"] for c in (await execute(proc, LOCAL_COPIES))["localCopies"]}
    foreign = sealed_for_another_server(proc, listed[ids["plain"]], tmp_path / "other")
    try:
        copy = next(c["id"] for c in (await execute(proc, LOCAL_COPIES))["localCopies"] if c["fileName"] == foreign)
        response = await execute_raw(proc, COPY_ITEMS, id=copy, source=None, path=None, first=None, after=None)
        [error] = response["errors"]
        assert error["extensions"]["code"] == "KEY_MISSING", error
        assert response["data"] == {"localCopy": None}
        response = await execute_raw(proc, "query($id: ID!) { localCopy(id: $id) { sources } }", id=copy)
        [error] = response["errors"]
        assert error["extensions"]["code"] == "KEY_MISSING", error
        assert response["data"] == {"localCopy": None}
    finally:
        (proc.data_dir / "local-copies" / foreign).unlink()
