"""createItemDownloadUrl through the real server: each kind of item (a file's bytes with Range,
a link's target, a folder as a ZIP, a settings module's JSON, a table as CSV), a damaged blob
(a clear error, or a broken-off ZIP: never wrong bytes), tampered and expired links, and every
bad input refused with no link."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import os
import sqlite3
import stat
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.support.api import create_and_wait, execute
from tests.support.apply import blob_path, modules, restore_points
from tests.support.config_file import write_config
from tests.support.folder_source import folder_server
from tests.support.in_process import InProcessServer

# Its main tests share a module-scoped server: one xdist worker runs them all, so it is made once.
pytestmark = pytest.mark.xdist_group("item_downloads")

LINK = """mutation($rp: ID, $lc: ID, $source: String!, $path: String!, $seconds: Int) {
    createItemDownloadUrl(restorePointId: $rp, localCopyId: $lc, source: $source, path: $path,
                          expiresInSeconds: $seconds) {
        signedUrl { url expiresAt } userErrors { code message field } } }"""

FOLDER = "Ordner mit Ümlaut"
GREETING = f"{FOLDER}/Grüße an alle.txt"
DEEP = f"{FOLDER}/sub/deep.bin"
WHEN = datetime(2021, 3, 4, 5, 6, 8, tzinfo=UTC)  # an even second: ZIP's DOS time keeps two-second steps
BIG = os.urandom(3 * 1024 * 1024 + 17)  # several pieces of the store: a loose blob, not a packed one
DEEP_BYTES = os.urandom(2 * 1024 * 1024 + 5)
ROWS = [
    (1, "ada", None, b"\x00\xffbytes", 1.5),
    (2, "", 'a, "quoted"\nline', None, float("inf")),
    (3, "Ünïcödé ☃", "", b"", float("-inf")),
]


def make_site(site: Path) -> None:
    (site / FOLDER / "sub" / "empty").mkdir(parents=True)
    (site / GREETING).write_text("Hallo, Welt!\n")
    (site / DEEP).write_bytes(DEEP_BYTES)
    script = site / FOLDER / "run.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o750)
    os.utime(script, (WHEN.timestamp(), WHEN.timestamp()))
    os.symlink("sub/deep.bin", site / FOLDER / "link")
    (site / "plain name.txt").write_text("plain\n")
    (site / "big.bin").write_bytes(BIG)


def make_database(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE things (id INTEGER PRIMARY KEY, name TEXT NOT NULL, note TEXT, data BLOB, ratio REAL)"
        )
        conn.executemany("INSERT INTO things VALUES (?, ?, ?, ?, ?)", ROWS)


def start_server(tmp: Path, **env: str) -> InProcessServer:
    site = tmp / "site"
    site.mkdir(parents=True)
    make_site(site)
    make_database(tmp / "app.db")
    extra = f'\n[[sources]]\nname = "appdb"\nkind = "database"\nurl = "sqlite:///{tmp / "app.db"}"\n'
    config = write_config(tmp, settings=True, page=False, extra=extra)
    return InProcessServer(data_dir=tmp / "data", env_overrides={"BACKUPS_CONFIG": str(config), **env}).start()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[InProcessServer, str]]:
    proc = start_server(tmp_path_factory.mktemp("item-downloads"))
    point = asyncio.run(create_and_wait(proc, "to download"))["restorePoint"]["id"]
    yield proc, point
    proc.close()


async def ask(server: InProcessServer, **variables: Any) -> dict[str, Any]:
    variables.setdefault("seconds", None)
    variables.setdefault("rp", None)
    variables.setdefault("lc", None)
    return (await execute(server, LINK, **variables))["createItemDownloadUrl"]


async def link(server: InProcessServer, point: str, source: str, path: str, seconds: int | None = None) -> str:
    payload = await ask(server, rp=point, source=source, path=path, seconds=seconds)
    assert payload["userErrors"] == [], payload
    url = payload["signedUrl"]["url"]
    assert url.startswith(f"{server.url}/download/item/")
    return str(url)


def get(url: str, **headers: str) -> httpx.Response:
    return httpx.get(url, headers=headers, timeout=60)  # no credentials of any kind


# -- each kind ------------------------------------------------------------------------------


async def test_a_file_is_its_bytes_with_headers(served) -> None:
    proc, point = served
    payload = await ask(proc, rp=point, source="site", path="big.bin", seconds=120)
    expires = datetime.fromisoformat(payload["signedUrl"]["expiresAt"])
    assert 110 <= (expires - datetime.now(UTC)).total_seconds() <= 121
    response = get(payload["signedUrl"]["url"])
    assert response.status_code == 200
    assert response.content == BIG
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["content-length"] == str(len(BIG))
    assert response.headers["content-disposition"] == 'attachment; filename="big.bin"'
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["etag"] == f'"{hashlib.sha256(BIG).hexdigest()}"'
    head = httpx.head(payload["signedUrl"]["url"])
    assert head.status_code == 200 and head.content == b"" and head.headers["content-length"] == str(len(BIG))


async def test_names_with_umlauts_and_spaces(served) -> None:
    proc, point = served
    response = get(await link(proc, point, "site", GREETING))
    assert response.status_code == 200 and response.content == b"Hallo, Welt!\n"
    assert response.headers["content-disposition"] == f"attachment; filename*=utf-8''{quote('Grüße an alle.txt')}"
    plain = get(await link(proc, point, "site", "plain name.txt"))
    assert plain.content == b"plain\n"  # a small file: a packed blob, served the same way
    # A space is quoted too (as Starlette writes a local copy's name): filename* carries it.
    assert plain.headers["content-disposition"] == "attachment; filename*=utf-8''plain%20name.txt"
    assert plain.headers["content-length"] == "6"


async def test_range_requests(served) -> None:
    proc, point = served
    url = await link(proc, point, "site", "big.bin")
    first = get(url, Range="bytes=0-999")
    assert first.status_code == 206
    assert first.headers["content-range"] == f"bytes 0-999/{len(BIG)}"
    assert first.content == BIG[:1000]
    rest = get(url, Range="bytes=1000-", **{"If-Range": first.headers["etag"]})
    assert rest.status_code == 206 and first.content + rest.content == BIG
    middle = get(url, Range=f"bytes={2 * 1024 * 1024 - 3}-{2 * 1024 * 1024 + 3}")
    assert middle.status_code == 206 and middle.content == BIG[2 * 1024 * 1024 - 3 : 2 * 1024 * 1024 + 4]
    assert get(url, Range=f"bytes={len(BIG) + 10}-").status_code == 416
    small = await link(proc, point, "site", "plain name.txt")
    assert get(small, Range="bytes=1-3").content == b"lai"


async def test_a_link_is_its_target_text(served) -> None:
    proc, point = served
    response = get(await link(proc, point, "site", f"{FOLDER}/link"))
    assert response.status_code == 200 and response.content == b"sub/deep.bin"
    assert response.headers["content-disposition"] == 'attachment; filename="link"'
    script = get(await link(proc, point, "site", f"{FOLDER}/run.sh"))
    assert script.headers["last-modified"] == "Thu, 04 Mar 2021 05:06:08 GMT"  # the file's own time


async def test_a_folder_is_a_zip_of_it(served, tmp_path: Path) -> None:
    proc, point = served
    url = await link(proc, point, "site", FOLDER)
    head = httpx.head(url)
    assert head.status_code == 200 and head.headers["content-type"] == "application/zip"
    assert "content-length" not in head.headers  # a ZIP made as it is sent has no length known before
    response = get(url)
    assert response.status_code == 200
    assert "content-length" not in response.headers
    assert response.headers["content-type"] == "application/zip"
    assert response.headers["content-disposition"] == f"attachment; filename*=utf-8''{quote(FOLDER + '.zip')}"
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert archive.testzip() is None
    members = {info.filename: info for info in archive.infolist()}
    assert set(members) == {
        "Grüße an alle.txt",
        "sub/",
        "sub/deep.bin",
        "sub/empty/",
        "run.sh",
        "link",
    }
    assert archive.read("Grüße an alle.txt") == b"Hallo, Welt!\n"
    assert archive.read("sub/deep.bin") == DEEP_BYTES
    assert archive.read("run.sh") == b"#!/bin/sh\necho hi\n"
    assert archive.read("link") == b"sub/deep.bin"

    def mode(name: str) -> int:
        return members[name].external_attr >> 16

    assert mode("run.sh") == stat.S_IFREG | 0o750
    assert stat.S_ISDIR(mode("sub/")) and stat.S_ISDIR(mode("sub/empty/"))
    assert stat.S_ISLNK(mode("link"))
    assert members["run.sh"].date_time == (2021, 3, 4, 5, 6, 8)
    # Unpacked by a ZIP tool, it is the folder again.
    unpacked = tmp_path / "unpacked"
    archive.extractall(unpacked)
    assert (unpacked / "sub" / "deep.bin").read_bytes() == DEEP_BYTES
    assert (unpacked / "sub" / "empty").is_dir()


async def test_a_whole_source_is_a_zip_of_its_top_level(served) -> None:
    proc, point = served
    response = get(await link(proc, point, "site", ""))
    assert response.headers["content-disposition"] == 'attachment; filename="site.zip"'
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert archive.read("big.bin") == BIG
    assert archive.read(GREETING) == b"Hallo, Welt!\n"
    assert f"{FOLDER}/" in archive.namelist()


async def test_a_settings_module_is_its_json_document(served) -> None:
    proc, point = served
    response = get(await link(proc, point, "settings", "audio.json"))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["content-disposition"] == 'attachment; filename="audio.json"'
    assert json.loads(response.content) == (await modules(proc))["audio"]


async def test_a_table_is_csv_with_a_header_row(served) -> None:
    proc, point = served
    response = get(await link(proc, point, "appdb", "things"))
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == 'attachment; filename="things.csv"'
    text = response.content.decode("utf-8")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == ["id", "name", "note", "data", "ratio"]
    assert rows[1:] == [
        ["1", "ada", "", '{"$base64": "AP9ieXRlcw=="}', "1.5"],
        ["2", "", 'a, "quoted"\nline', "", '{"$float": "Infinity"}'],
        ["3", "Ünïcödé ☃", "", '{"$base64": ""}', '{"$float": "-Infinity"}'],
    ]
    # NULL is an empty field with no quotes; an empty text is quoted: the two stay apart.
    lines = text.split("\r\n")
    assert lines[1] == '"1","ada",,"{""$base64"": ""AP9ieXRlcw==""}","1.5"'
    assert lines[2].startswith('"2","","a, ""quoted""\nline",,')
    assert lines[4] == "" and len(lines) == 5  # CRLF after every row, the last one too


# -- links ----------------------------------------------------------------------------------


async def test_tampered_link_is_forbidden(served) -> None:
    proc, point = served
    url = await link(proc, point, "site", "big.bin")
    token = url.rsplit("/", 1)[1]
    flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    for bad in (flipped, token + "x", "x" + token, "nonsense"):
        response = get(f"{proc.url}/download/item/{bad}")
        assert response.status_code == 403, bad
        assert response.text == "This download link is not valid.\n"
        assert BIG[:64] not in response.content


async def test_a_local_copy_link_opens_no_item_and_back(served) -> None:
    """Each kind of link is signed apart: one is never taken for the other."""
    proc, point = served
    token = (await link(proc, point, "site", "big.bin")).rsplit("/", 1)[1]
    response = get(f"{proc.url}/download/{token}")
    assert response.status_code == 403 and response.text == "This download link is not valid.\n"


async def test_expired_link_is_gone(served) -> None:
    proc, point = served
    proc.clock.freeze(proc.clock.time())
    try:
        url = await link(proc, point, "site", "big.bin", seconds=1)
        assert get(url).status_code == 200
        proc.clock.advance(2.1)  # past the second asked for, plus the rounding up
        response = get(url)
        assert response.status_code == 410 and response.text == "This download link has expired.\n"
        folder = await link(proc, point, "site", FOLDER, seconds=1)
        proc.clock.advance(2.1)
        assert get(folder).status_code == 410
    finally:
        proc.clock.thaw()


# -- bad inputs -----------------------------------------------------------------------------


async def refused(proc: InProcessServer, code: str, field: str, **variables: Any) -> str:
    before = await restore_points(proc)
    payload = await ask(proc, **variables)
    assert payload["signedUrl"] is None, payload
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [(code, field)], payload
    assert await restore_points(proc) == before  # nothing changed
    return str(payload["userErrors"][0]["message"])


async def test_bad_inputs_get_a_clear_error_and_no_link(served) -> None:
    proc, point = served
    missing_point = "rp_" + "0" * 24
    assert missing_point in await refused(proc, "NOT_FOUND", "restorePointId", rp=missing_point, source="site", path="")
    await refused(proc, "NOT_FOUND", "restorePointId", rp="not-an-id", source="site", path="big.bin")
    assert "'nosuch'" in await refused(proc, "NOT_FOUND", "source", rp=point, source="nosuch", path="big.bin")
    message = await refused(proc, "NOT_FOUND", "path", rp=point, source="site", path="no such file.txt")
    assert "'no such file.txt'" in message and "'site'" in message
    # A table is named by the table alone; its file's name is not an item.
    await refused(proc, "NOT_FOUND", "path", rp=point, source="appdb", path="things.jsonl")
    await refused(proc, "NOT_FOUND", "path", rp=point, source="settings", path="nosuch.json")
    for bad in ("..", f"{FOLDER}/../big.bin", "/etc/passwd", "big.bin\x00.txt", "./big.bin", f"{FOLDER}//link"):
        await refused(proc, "INVALID_INPUT", "path", rp=point, source="site", path=bad)
    await refused(proc, "INVALID_INPUT", "path", rp=point, source="settings", path="audio.json#/nope~2")
    await refused(proc, "INVALID_INPUT", "path", rp=point, source="settings", path="audio.json#/volume")
    assert "exactly one" in await refused(proc, "INVALID_INPUT", "restorePointId", source="site", path="big.bin")
    await refused(proc, "INVALID_INPUT", "restorePointId", rp=point, lc="lc_bm9uZS56aXA", source="site", path="big.bin")
    await refused(proc, "NOT_FOUND", "localCopyId", lc="lc_bm9uZS56aXA", source="site", path="big.bin")
    for seconds in (0, -5, 24 * 3600 + 1):
        await refused(
            proc, "INVALID_INPUT", "expiresInSeconds", rp=point, source="site", path="big.bin", seconds=seconds
        )


async def test_a_deleted_restore_point_opens_nothing(make_server, tmp_path: Path) -> None:
    server, _, _ = folder_server(make_server, tmp_path, files={"a.txt": "a\n"})
    point = (await create_and_wait(server, "soon gone"))["restorePoint"]["id"]
    url = await link(server, point, "site", "a.txt")
    deleted = await execute(
        server, "mutation($id: ID!) { deleteRestorePoint(id: $id) { deletedId userErrors { code } } }", id=point
    )
    assert deleted["deleteRestorePoint"]["deletedId"] == point
    response = get(url)
    assert response.status_code == 404 and response.text == "The restore point of this link was deleted.\n"


# -- damage ---------------------------------------------------------------------------------


def damage(proc: InProcessServer, digest: str) -> Path:
    """Change one byte in the middle of a loose blob, as a failing disk might."""
    blob = blob_path(proc, digest)
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.chmod(0o644)
    blob.write_bytes(bytes(data))
    return blob


async def digests(proc: InProcessServer, point: str) -> dict[tuple[str, str], str]:
    """(source, manifest path) -> SHA-256 of every entry with content of a restore point, read
    from the server's database as a person looking into it would."""
    assert proc.database is not None
    engine = create_engine(proc.database.url)
    query = text(
        "SELECT e.source, e.path, e.sha256 FROM manifest_entry e JOIN restore_point r "
        "ON r.manifest_id = e.manifest_id WHERE r.id = :id AND e.sha256 IS NOT NULL"
    )
    try:
        with engine.connect() as connection:
            return {(source, path): digest for source, path, digest in connection.execute(query, {"id": point})}
    finally:
        engine.dispose()


@pytest.fixture
def damaged_server(tmp_path: Path) -> Iterator[InProcessServer]:
    # Loose blobs only, so that each one is a file of its own to damage.
    proc = start_server(tmp_path, BACKUPS_PACK_SMALL_BLOBS="false")
    yield proc
    proc.close()


async def test_a_damaged_file_is_named_and_no_byte_is_sent(damaged_server) -> None:
    proc = damaged_server
    point = (await create_and_wait(proc, "a"))["restorePoint"]["id"]
    url = await link(proc, point, "site", "big.bin")
    blob = damage(proc, (await digests(proc, point))[("site", "big.bin")])
    response = get(url)
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "CONTENT_DAMAGED"
    assert "site/big.bin" in error["message"] and "damaged" in error["message"]
    assert BIG[:64] not in response.content
    assert blob.exists()  # left for a person to look at

    table = await link(proc, point, "appdb", "things")
    damage(proc, (await digests(proc, point))[("appdb", "things.jsonl")])
    response = get(table)
    assert response.status_code == 500 and response.json()["errors"][0]["extensions"]["code"] == "CONTENT_DAMAGED"
    assert "appdb/things.jsonl" in response.json()["errors"][0]["message"]
    assert b"ada" not in response.content

    module = await link(proc, point, "settings", "audio.json")
    blob_path(proc, (await digests(proc, point))[("settings", "audio.json")]).unlink()
    response = get(module)
    assert response.status_code == 500 and "missing" in response.json()["errors"][0]["message"]


async def test_a_damaged_member_breaks_the_zip_off(damaged_server) -> None:
    proc = damaged_server
    point = (await create_and_wait(proc, "a"))["restorePoint"]["id"]
    url = await link(proc, point, "site", FOLDER)
    damage(proc, (await digests(proc, point))[("site", DEEP)])
    received = bytearray()
    with pytest.raises(httpx.RemoteProtocolError), httpx.stream("GET", url, timeout=60) as response:
        assert response.status_code == 200  # the ZIP had begun before the member was read
        for piece in response.iter_bytes():
            received += piece
    with pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(io.BytesIO(bytes(received)))
    assert DEEP_BYTES[-1024:] not in received  # the damaged member's end never went out
    # The whole file alone is refused before its first byte.
    response = get(await link(proc, point, "site", DEEP))
    assert response.status_code == 500 and DEEP in response.json()["errors"][0]["message"]


async def test_a_restore_point_being_downloaded_is_not_deleted_under_it(make_server, tmp_path: Path) -> None:
    """The download holds its restore point: a delete meanwhile is BUSY, and works once it ends."""
    huge = bytes(48 * 1024 * 1024)  # more than the loopback's buffers hold: the server waits on the client
    server, _, _ = folder_server(make_server, tmp_path, files={"huge.bin": huge})
    point = (await create_and_wait(server, "held"))["restorePoint"]["id"]
    url = await link(server, point, "site", "huge.bin")
    delete = "mutation($id: ID!) { deleteRestorePoint(id: $id) { deletedId userErrors { code message } } }"
    received = 0
    with httpx.stream("GET", url, timeout=60) as response:
        pieces = response.iter_raw()
        received += len(next(pieces))
        busy = (await execute(server, delete, id=point))["deleteRestorePoint"]
        assert busy["deletedId"] is None and [e["code"] for e in busy["userErrors"]] == ["BUSY"], busy
        received += sum(len(piece) for piece in pieces)
    assert received == len(huge)
    # The hold ends as the response's last message goes out: a moment after the client has it all.
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        done = (await execute(server, delete, id=point))["deleteRestorePoint"]
        if [e["code"] for e in done["userErrors"]] != ["BUSY"]:
            break
        assert asyncio.get_running_loop().time() < deadline, "the download's hold was never released"
        await asyncio.sleep(0.02)
    assert done["deletedId"] == point, done


async def test_a_source_no_longer_configured_is_read_as_plain_entries(make_server, tmp_path: Path) -> None:
    server, _, database = folder_server(make_server, tmp_path, files={"a.txt": "a\n"}, database=True)
    point = (await create_and_wait(server, "with the database"))["restorePoint"]["id"]
    table = await link(server, point, "appdb", "users")
    server.stop()
    write_config(tmp_path, settings=True, page=False)  # the database source is gone
    server.start()
    assert get(table).content.startswith(b'"id","name"\r\n')  # a link keeps the kind it was made for
    await refused(server, "NOT_FOUND", "path", rp=point, source="appdb", path="users")
    response = get(await link(server, point, "appdb", "users.jsonl"))
    assert response.headers["content-type"] == "application/octet-stream"
    lines = response.content.decode().splitlines()
    assert json.loads(lines[0])["table"] == "users" and json.loads(lines[1]) == {"id": 1, "name": "ada"}


async def test_a_client_that_stops_reading_a_zip_is_cut_off_and_frees_the_restore_point(
    make_server, tmp_path: Path
) -> None:
    """A ZIP whose client takes nothing more within the stall limit (here 1 s) ends, so the
    restore point it held can be deleted; while the client still reads, the delete is BUSY."""
    noise = os.urandom(48 * 1024 * 1024)  # does not compress: more than the loopback's buffers hold
    server, _, _ = folder_server(
        make_server, tmp_path, files={"media/noise.bin": noise}, BACKUPS_BODY_TIMEOUT_SECONDS="1"
    )
    point = (await create_and_wait(server, "stalled"))["restorePoint"]["id"]
    url = httpx.URL(await link(server, point, "site", "media"))
    delete = "mutation($id: ID!) { deleteRestorePoint(id: $id) { deletedId userErrors { code } } }"
    reader, writer = await asyncio.open_connection(url.host, url.port)
    try:
        writer.write(f"GET {url.raw_path.decode()} HTTP/1.1\r\nHost: {url.host}\r\n\r\n".encode())
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        await reader.readexactly(1024 * 1024)  # it reads a little, then nothing more
        refused = (await execute(server, delete, id=point))["deleteRestorePoint"]
        assert refused == {"deletedId": None, "userErrors": [{"code": "BUSY"}]}  # held while it streams
        deadline = asyncio.get_running_loop().time() + 30
        while (await execute(server, delete, id=point))["deleteRestorePoint"]["deletedId"] != point:
            assert asyncio.get_running_loop().time() < deadline, "the stalled download still holds the restore point"
            await asyncio.sleep(0.2)
    finally:
        writer.close()
