"""Races between reading something and deleting it, each run many times through the API.

The rule under test: an operation (or download) that reads a restore point or a local copy
holds it from the moment it is accepted, so a delete sent at the same moment either gets
BUSY (and the reader finishes with a good result) or wins (and the reader is refused with
NOT_FOUND): never both accepted, never a copy that does not verify.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import socket
import time
import uuid
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from gql import Client, FileVar, GraphQLRequest
from gql.transport.aiohttp import AIOHTTPTransport
from sqlalchemy import create_engine, text

from server.model.manifests import manifest_id
from tests.support.api import auth_headers, create_and_wait, execute, update_settings, wait_for_operation
from tests.support.apply import apply
from tests.support.local_copies import exported_copy
from tests.support.server_process import ServerProcess

# Its tests share a module-scoped server: one xdist worker runs them all, so it is made once.
pytestmark = pytest.mark.xdist_group("holds")

LOOPS = 12
PAYLOAD = "operation { id status } userErrors { code message field }"
EXPORT = f"mutation($id: ID!) {{ exportRestorePoint(restorePointId: $id) {{ {PAYLOAD} }} }}"
IMPORT = f"mutation($id: ID!) {{ importLocalCopy(localCopyId: $id) {{ {PAYLOAD} }} }}"
DELETE_POINT = "mutation($id: ID!) { deleteRestorePoint(id: $id) { deletedId userErrors { code message field } } }"
DELETE_COPY = "mutation($id: ID!) { deleteLocalCopy(id: $id) { deletedId userErrors { code message field } } }"
LINK = "mutation($id: ID!) { createDownloadUrl(localCopyId: $id) { signedUrl { url } userErrors { code } } }"
COPY_OF_OP = "query($id: ID!) { operation(id: $id) { error { code message } localCopy { id fileName } } }"
POINT = "query($id: ID!) { restorePoint(id: $id) { id itemCount checksum } }"
UPLOAD = """mutation($file: Upload!) { uploadLocalCopy(file: $file) {
    localCopy { id fileName problem } userErrors { code message field } } }"""


@pytest.fixture(scope="module")
def racer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(data_dir=tmp_path_factory.mktemp("holds") / "data").start(timeout=120)  # a loaded machine
    yield proc
    proc.close()


def folder(server: ServerProcess) -> Path:
    return server.data_dir / "local-copies"


def leftovers(server: ServerProcess) -> list[str]:
    """Hidden temporary files in the local copies folder (partial exports and uploads)."""
    return sorted(p.name for p in folder(server).iterdir() if p.name.startswith("."))


def manifest_of(path: Path) -> dict:
    """The copy's manifest, after checking every member's CRC (any unzip tool would)."""
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
        return json.loads(archive.read("manifest.json"))


async def fresh_point(server: ServerProcess) -> dict:
    """A restore point of its own content (so deleting it frees blobs of its own)."""
    await update_settings(server, "setup", {"siteName": f"Race {uuid.uuid4().hex[:8]}"})
    final = await create_and_wait(server, "race")
    return (await execute(server, POINT, id=final["restorePoint"]["id"]))["restorePoint"]


def codes(payload: dict) -> list[str]:
    return [error["code"] for error in payload["userErrors"]]


async def test_export_racing_delete_never_writes_an_empty_copy(racer: ServerProcess) -> None:
    outcomes = []
    for _ in range(LOOPS):
        point = await fresh_point(racer)
        exported, deleted = await asyncio.gather(
            execute(racer, EXPORT, id=point["id"]), execute(racer, DELETE_POINT, id=point["id"])
        )
        exported, deleted = exported["exportRestorePoint"], deleted["deleteRestorePoint"]
        if exported["operation"] is not None:
            outcomes.append("export first")
            assert codes(deleted) == ["BUSY"], (exported, deleted)
            final = await wait_for_operation(racer, exported["operation"]["id"])
            assert final["status"] == "SUCCEEDED", final
            copy = (await execute(racer, COPY_OF_OP, id=final["id"]))["operation"]["localCopy"]
            manifest = manifest_of(folder(racer) / copy["fileName"])
            assert len(manifest["entries"]) == point["itemCount"] > 0
            assert manifest["restorePoint"]["checksum"] == point["checksum"]
            again = (await execute(racer, DELETE_POINT, id=point["id"]))["deleteRestorePoint"]
            assert again["deletedId"] == point["id"]  # the hold ended with the export
        else:
            outcomes.append("delete first")
            assert codes(exported) == ["NOT_FOUND"] and deleted["deletedId"] == point["id"], (exported, deleted)
        assert (await execute(racer, POINT, id=point["id"]))["restorePoint"] is None
    assert leftovers(racer) == []
    print(outcomes)


async def test_two_exports_at_once_write_two_valid_copies(racer: ServerProcess) -> None:
    point = await fresh_point(racer)
    for _ in range(LOOPS):
        first, second = await asyncio.gather(
            execute(racer, EXPORT, id=point["id"]), execute(racer, EXPORT, id=point["id"])
        )
        ops = [first["exportRestorePoint"]["operation"]["id"], second["exportRestorePoint"]["operation"]["id"]]
        finals = await asyncio.gather(*(wait_for_operation(racer, op) for op in ops))
        assert [f["status"] for f in finals] == ["SUCCEEDED", "SUCCEEDED"], finals
        copies = [(await execute(racer, COPY_OF_OP, id=op))["operation"]["localCopy"] for op in ops]
        assert copies[0]["fileName"] != copies[1]["fileName"], copies
        for copy in copies:
            manifest = manifest_of(folder(racer) / copy["fileName"])
            assert len(manifest["entries"]) == point["itemCount"]
            deleted = (await execute(racer, DELETE_COPY, id=copy["id"]))["deleteLocalCopy"]
            assert deleted["deletedId"] == copy["id"]
    assert leftovers(racer) == []


async def test_apply_racing_delete(racer: ServerProcess) -> None:
    for _ in range(LOOPS):
        point = await fresh_point(racer)
        applied, deleted = await asyncio.gather(
            apply(racer, point["id"], safety=False), execute(racer, DELETE_POINT, id=point["id"])
        )
        deleted = deleted["deleteRestorePoint"]
        if applied["operation"] is not None:
            assert codes(deleted) == ["BUSY"], (applied, deleted)
            final = await wait_for_operation(racer, applied["operation"]["id"])
            assert final["status"] == "SUCCEEDED", final
            assert (await execute(racer, POINT, id=point["id"]))["restorePoint"] == point
            assert (await execute(racer, DELETE_POINT, id=point["id"]))["deleteRestorePoint"]["deletedId"] == point[
                "id"
            ]
        else:
            assert codes(applied) == ["NOT_FOUND"] and deleted["deletedId"] == point["id"], (applied, deleted)


async def test_import_racing_delete_of_the_local_copy(racer: ServerProcess) -> None:
    point = await fresh_point(racer)
    original = folder(racer) / (await exported_copy(racer, point["id"]))["fileName"]
    for turn in range(LOOPS):
        name = f"import-race-{turn}.zip"
        shutil.copy(original, folder(racer) / name)
        copy_id = next(
            c["id"]
            for c in (await execute(racer, "{ localCopies { id fileName } }"))["localCopies"]
            if c["fileName"] == name
        )
        imported, deleted = await asyncio.gather(
            execute(racer, IMPORT, id=copy_id), execute(racer, DELETE_COPY, id=copy_id)
        )
        imported, deleted = imported["importLocalCopy"], deleted["deleteLocalCopy"]
        if imported["operation"] is not None:
            assert codes(deleted) == ["BUSY"], (imported, deleted)
            final = await wait_for_operation(racer, imported["operation"]["id"])
            assert final["status"] == "SUCCEEDED", final
            assert (folder(racer) / name).read_bytes() == original.read_bytes()
            assert (await execute(racer, DELETE_COPY, id=copy_id))["deleteLocalCopy"]["deletedId"] == copy_id
        else:
            assert codes(imported) == ["NOT_FOUND"] and deleted["deletedId"] == copy_id, (imported, deleted)
        assert not (folder(racer) / name).exists()
    assert (await execute(racer, POINT, id=point["id"]))["restorePoint"] == point


def big_copy(path: Path, size: int) -> None:
    """A valid local copy of `size` random bytes, written as the export writes one."""
    from server.model.records import EntryKind, ManifestEntry, RestorePoint, RestorePointOrigin
    from server.storage.local_copy.format import write_local_copy

    data = os.urandom(size)  # incompressible: the file is as large as its content
    digest = hashlib.sha256(data).hexdigest()
    entry = ManifestEntry(
        source="files", path="big.bin", kind=EntryKind.FILE, size=len(data), sha256=digest, mode=0o644
    )
    point = RestorePoint(
        id=f"rp_{uuid.uuid4().hex[:24]}",
        label="big",
        note=None,
        origin=RestorePointOrigin.MANUAL,
        created_at=datetime.now(UTC),
        created_by=None,
        size_bytes=len(data),
        stored_bytes=len(data),
        item_count=1,
        checksum="0" * 64,
        server_version="test",
    )
    import io

    write_local_copy(path, restore_point=point, entries=[entry], open_blob=lambda _digest: io.BytesIO(data))


async def slow_download(url: str, until: asyncio.Future) -> tuple[int, str | None]:
    """GET `url` with a small receive buffer, pausing after the first bytes until `until` is
    done, so the server is still sending then (a large kernel buffer would take it all at
    once); returns the status and the body's SHA-256."""
    parts = httpx.URL(url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (parts.host, parts.port))
    reader, writer = await asyncio.open_connection(sock=sock, limit=1024 * 1024)
    try:
        writer.write(
            f"GET {parts.raw_path.decode()} HTTP/1.1\r\nHost: {parts.host}\r\nConnection: close\r\n\r\n".encode()
        )
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        status = int(head.split()[1])
        if status != 200:
            return status, None
        hasher = hashlib.sha256(await reader.read(64 * 1024))
        await asyncio.wait({until}, timeout=30)
        while chunk := await reader.read(1024 * 1024):
            hasher.update(chunk)
        return 200, hasher.hexdigest()
    finally:
        writer.close()


async def test_download_racing_delete_of_the_local_copy(racer: ServerProcess, tmp_path: Path) -> None:
    """A download holds its copy until the last byte is sent: a delete meanwhile is BUSY."""
    original = tmp_path / "big.zip"
    await asyncio.to_thread(big_copy, original, 16 * 1024 * 1024)  # more than the send buffer holds
    expected = hashlib.sha256(original.read_bytes()).hexdigest()
    for turn in range(LOOPS):
        name = f"download-race-{turn}.zip"
        shutil.copy(original, folder(racer) / name)
        copy_id = next(
            c["id"]
            for c in (await execute(racer, "{ localCopies { id fileName } }"))["localCopies"]
            if c["fileName"] == name
        )
        url = (await execute(racer, LINK, id=copy_id))["createDownloadUrl"]["signedUrl"]["url"]

        started = time.monotonic()
        delete = asyncio.ensure_future(execute(racer, DELETE_COPY, id=copy_id))

        (status, digest), deleted = await asyncio.gather(slow_download(url, delete), delete)
        deleted = deleted["deleteLocalCopy"]
        if status == 200:
            assert digest == expected
            assert codes(deleted) == ["BUSY"], (deleted, turn, time.monotonic() - started)
            # The hold ends when the server has finished the response, a moment after the last byte.
            for _ in range(50):
                again = (await execute(racer, DELETE_COPY, id=copy_id))["deleteLocalCopy"]
                if codes(again) != ["BUSY"]:
                    break
                await asyncio.sleep(0.1)
            assert again["deletedId"] == copy_id, again
        else:
            assert status == 404 and deleted["deletedId"] == copy_id, (status, deleted)
        assert not (folder(racer) / name).exists()


async def upload(server: ServerProcess, path: Path, filename: str) -> dict:
    transport = AIOHTTPTransport(url=server.graphql_url, headers=auth_headers(server))
    async with Client(transport=transport) as session:
        with path.open("rb") as handle:
            request = GraphQLRequest(UPLOAD, variable_values={"file": FileVar(handle, filename=filename)})
            return (await session.execute(request, upload_files=True))["uploadLocalCopy"]


async def test_uploads_and_exports_never_replace_each_others_copies(racer: ServerProcess, tmp_path: Path) -> None:
    """Two uploads under one name, and an export beside them: every copy kept, each whole."""
    point = await fresh_point(racer)
    exported = await exported_copy(racer, point["id"])
    carried = tmp_path / "carried.zip"
    shutil.copy(folder(racer) / exported["fileName"], carried)
    for turn in range(LOOPS):
        name = f"same-{turn}.zip"
        first, second, export = await asyncio.gather(
            upload(racer, carried, name), upload(racer, carried, name), execute(racer, EXPORT, id=point["id"])
        )
        final = await wait_for_operation(racer, export["exportRestorePoint"]["operation"]["id"])
        assert final["status"] == "SUCCEEDED", final
        made = (await execute(racer, COPY_OF_OP, id=final["id"]))["operation"]["localCopy"]
        names = {first["localCopy"]["fileName"], second["localCopy"]["fileName"], made["fileName"]}
        assert names == {name, f"same-{turn}-2.zip", made["fileName"]} and len(names) == 3, (first, second, made)
        for file_name in names:
            assert len(manifest_of(folder(racer) / file_name)["entries"]) == point["itemCount"]
        for copy in (first["localCopy"], second["localCopy"], made):
            assert (await execute(racer, DELETE_COPY, id=copy["id"]))["deleteLocalCopy"]["deletedId"] == copy["id"]
    assert leftovers(racer) == []


async def test_upload_racing_delete_of_its_name(racer: ServerProcess, tmp_path: Path) -> None:
    """Deleting the id an upload is about to get: NOT_FOUND before it lands, else the whole
    copy goes; never a half-written file, never a temporary file left."""
    point = await fresh_point(racer)
    carried = tmp_path / "carried.zip"
    shutil.copy(folder(racer) / (await exported_copy(racer, point["id"]))["fileName"], carried)
    from server.storage.local_copy.folder import copy_id

    for turn in range(LOOPS):
        name = f"upload-race-{turn}.zip"
        uploaded, deleted = await asyncio.gather(
            upload(racer, carried, name), execute(racer, DELETE_COPY, id=copy_id(name))
        )
        assert uploaded["userErrors"] == [] and uploaded["localCopy"]["fileName"] == name, uploaded
        deleted = deleted["deleteLocalCopy"]
        if deleted["deletedId"] is None:
            assert codes(deleted) == ["NOT_FOUND"], deleted
            assert (folder(racer) / name).read_bytes() == carried.read_bytes()
        else:
            assert not (folder(racer) / name).exists()
        assert leftovers(racer) == []


async def test_export_that_does_not_verify_leaves_nothing(racer: ServerProcess) -> None:
    """A restore point whose stored entries are incomplete (itemCount 3, no entries): the
    export fails with a clear error and writes no file, hidden or not."""
    point_id = f"rp_{uuid.uuid4().hex[:24]}"
    empty = manifest_id([])
    engine = create_engine(racer.database.url)
    with engine.begin() as connection:
        if connection.execute(text("SELECT 1 FROM manifest WHERE id = :id"), {"id": empty}).first() is None:
            connection.execute(text("INSERT INTO manifest (id) VALUES (:id)"), {"id": empty})
        connection.execute(
            text(
                "INSERT INTO restore_point (id, label, note, origin, created_at, created_by, size_bytes,"
                " stored_bytes, item_count, checksum, server_version, manifest_id) VALUES (:id, 'damaged', NULL,"
                " 'IMPORTED', :at, NULL, 0, 0, 3, :sum, 'test', :manifest)"
            ),
            {"id": point_id, "at": datetime(2020, 1, 1, tzinfo=UTC), "sum": "0" * 64, "manifest": empty},
        )
    engine.dispose()
    before = sorted(p.name for p in folder(racer).iterdir())
    data = (await execute(racer, EXPORT, id=point_id))["exportRestorePoint"]
    final = await wait_for_operation(racer, data["operation"]["id"])
    assert final["status"] == "FAILED"
    assert final["error"]["code"] == "COPY_CHECK_FAILED"
    assert "lists 0 items" in final["error"]["message"] and "has 3" in final["error"]["message"]
    assert sorted(p.name for p in folder(racer).iterdir()) == before
    assert (await execute(racer, POINT, id=point_id))["restorePoint"]["itemCount"] == 3  # nothing else changed
