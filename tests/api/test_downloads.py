"""Signed, expiring download links: full and ranged downloads, and every way a link fails."""

from __future__ import annotations

import asyncio
import hashlib
import math
import os
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from itsdangerous import URLSafeSerializer

from server.model.access.download_links import SALT
from server.model.records import EntryKind, ManifestEntry, RestorePoint, RestorePointOrigin
from server.storage.blobs.content_store import ContentStore
from server.storage.local_copy.folder import fingerprint
from server.storage.local_copy.format import write_local_copy
from tests.support.api import create_and_wait, execute
from tests.support.in_process import InProcessServer
from tests.support.local_copies import exported_copy
from tests.support.server_process import ServerProcess

# Its tests share a module-scoped server: one xdist worker runs them all, so it is made once.
pytestmark = pytest.mark.xdist_group("downloads")

LINK = """mutation($id: ID!, $seconds: Int) { createDownloadUrl(localCopyId: $id, expiresInSeconds: $seconds) {
    signedUrl { url expiresAt } userErrors { code message field } } }"""


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[InProcessServer, dict]]:
    proc = InProcessServer(data_dir=tmp_path_factory.mktemp("downloads") / "data").start()

    async def prepare() -> dict:
        final = await create_and_wait(proc, "to download")
        return await exported_copy(proc, final["restorePoint"]["id"])

    copy = asyncio.run(prepare())
    yield proc, copy
    proc.close()


async def link(proc: ServerProcess, copy_id: str, seconds: int | None = None) -> str:
    payload = (await execute(proc, LINK, id=copy_id, seconds=seconds))["createDownloadUrl"]
    assert payload["userErrors"] == [], payload
    return payload["signedUrl"]["url"]


def path_of(proc: ServerProcess, copy: dict) -> Path:
    return proc.data_dir / "local-copies" / copy["fileName"]


async def test_download_streams_the_file_with_headers(exported) -> None:
    proc, copy = exported
    payload = (await execute(proc, LINK, id=copy["id"], seconds=120))["createDownloadUrl"]
    url = payload["signedUrl"]["url"]
    expires = datetime.fromisoformat(payload["signedUrl"]["expiresAt"])
    assert 110 <= (expires - datetime.now(UTC)).total_seconds() <= 121
    assert url.startswith(f"{proc.url}/download/")

    response = httpx.get(url)  # no credentials of any kind
    body = path_of(proc, copy).read_bytes()
    assert response.status_code == 200
    assert response.content == body
    assert response.headers["content-length"] == str(len(body))
    assert response.headers["content-disposition"] == f'attachment; filename="{copy["fileName"]}"'
    assert response.headers["content-type"] == "application/zip"
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["etag"] == f'"{fingerprint(path_of(proc, copy).stat())}"'

    head = httpx.head(url)
    assert head.status_code == 200 and head.content == b"" and head.headers["content-length"] == str(len(body))


async def test_range_requests_resume_a_broken_download(exported) -> None:
    proc, copy = exported
    url = await link(proc, copy["id"])
    body = path_of(proc, copy).read_bytes()
    first = httpx.get(url, headers={"Range": "bytes=0-999"})
    assert first.status_code == 206
    assert first.headers["content-range"] == f"bytes 0-999/{len(body)}"
    etag = first.headers["etag"]
    rest = httpx.get(url, headers={"Range": "bytes=1000-", "If-Range": etag})
    assert rest.status_code == 206
    assert first.content + rest.content == body
    beyond = httpx.get(url, headers={"Range": f"bytes={len(body) + 10}-"})
    assert beyond.status_code == 416


async def test_tampered_link_is_forbidden(exported) -> None:
    proc, copy = exported
    url = await link(proc, copy["id"])
    token = url.rsplit("/", 1)[1]
    flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    for bad in (flipped, token + "x", "x" + token, "nonsense"):
        response = httpx.get(f"{proc.url}/download/{bad}")
        assert response.status_code == 403, bad
        assert response.text == "This download link is not valid.\n"


async def test_expired_link_is_gone(exported) -> None:
    proc, copy = exported
    # The server's clock stands still until moved: on a loaded machine more than the link's one
    # second of real time may pass between asking for it and the first GET.
    proc.clock.freeze(proc.clock.time())
    try:
        url = await link(proc, copy["id"], seconds=1)
        assert httpx.get(url).status_code == 200
        proc.clock.advance(2.1)  # on the server's clock, past the second asked plus the rounding up
        response = httpx.get(url)
        assert response.status_code == 410 and "expired" in response.text
    finally:
        proc.clock.thaw()


async def test_link_lives_at_least_as_long_as_asked(exported) -> None:
    """Asked at the end of a second (x.999), a 1-second link still opens half a second later:
    its expiry is not rounded down into the same second. Then it expires."""
    proc, copy = exported
    proc.clock.freeze(math.floor(proc.clock.time()) + 1.999)
    try:
        url = await link(proc, copy["id"], seconds=1)
        proc.clock.advance(0.5)
        assert httpx.get(url).status_code == 200
        proc.clock.advance(1.6)
        response = httpx.get(url)
        assert response.status_code == 410 and "expired" in response.text
    finally:
        proc.clock.thaw()


async def test_link_never_leaves_the_folder_even_when_signed(exported) -> None:
    """A link signed with the server's own key for a path outside the folder opens nothing."""
    proc, _ = exported
    key = (proc.data_dir / "secret.key").read_text().strip()
    signer = URLSafeSerializer(key, salt=SALT)
    outside = proc.data_dir / "secret.key"
    for name in ("../secret.key", str(outside), "..", ".", ".hidden"):
        token = signer.dumps([name, fingerprint(outside.stat()), int(time.time()) + 60])
        response = httpx.get(f"{proc.url}/download/{token}")
        assert response.status_code == 404, name
        assert key not in response.text


async def test_link_opens_only_its_own_file_version(exported, tmp_path: Path) -> None:
    proc, copy = exported
    folder = proc.data_dir / "local-copies"
    second = folder / "second.zip"
    second.write_bytes(path_of(proc, copy).read_bytes())
    listed = {c["fileName"]: c["id"] for c in (await execute(proc, "{ localCopies { id fileName } }"))["localCopies"]}
    url_second = await link(proc, listed["second.zip"])
    url_first = await link(proc, copy["id"])
    assert url_first != url_second

    # Replace the second file under its name: its link must not serve the new bytes.
    replacement = tmp_path / "replacement.zip"
    replacement.write_bytes(path_of(proc, copy).read_bytes() + b"\0")
    os.replace(replacement, second)
    response = httpx.get(url_second)
    assert response.status_code == 404 and "deleted or replaced" in response.text

    second.unlink()
    assert httpx.get(url_second).status_code == 404
    assert httpx.get(url_first).status_code == 200


async def test_link_arguments_are_checked(exported) -> None:
    proc, copy = exported
    for seconds in (0, -5, 24 * 3600 + 1):
        payload = (await execute(proc, LINK, id=copy["id"], seconds=seconds))["createDownloadUrl"]
        assert payload["signedUrl"] is None
        assert payload["userErrors"][0]["code"] == "INVALID_INPUT"
        assert payload["userErrors"][0]["field"] == "expiresInSeconds"
    missing = (await execute(proc, LINK, id="lc_bm9uZS56aXA", seconds=60))["createDownloadUrl"]
    assert missing["userErrors"][0]["code"] == "NOT_FOUND"


def write_big_copy(target: Path, size: int, scratch: Path) -> str:
    """A valid ~`size`-byte copy of incompressible content, as a person might copy in."""
    store = ContentStore(scratch)
    digest, length, _ = store.put_stream(_RandomStream(size))
    entry = ManifestEntry("directory", "media/show.mp4", EntryKind.FILE, length, digest, 0o644, None)
    point = RestorePoint(
        id="rp_0000000000000000000000aa",
        label="big",
        note=None,
        origin=RestorePointOrigin.MANUAL,
        created_at=datetime.now(UTC),
        created_by=None,
        size_bytes=length,
        stored_bytes=length,
        item_count=1,
        checksum="0" * 64,
        server_version="test",
    )
    write_local_copy(target, restore_point=point, entries=[entry], open_blob=store.open)
    hasher = hashlib.sha256()
    with target.open("rb") as handle:
        while chunk := handle.read(1024 * 1024):
            hasher.update(chunk)
    return hasher.hexdigest()


class _RandomStream:
    def __init__(self, size: int) -> None:
        self.left = size

    def read(self, count: int = -1) -> bytes:
        count = self.left if count < 0 else min(count, self.left)
        self.left -= count
        return os.urandom(count)


async def test_large_download_keeps_server_memory_flat(make_server_process, tmp_path: Path) -> None:
    # Memory is measured on a server process of its own: an in-process one shares the test's.
    proc = make_server_process().start()
    target = proc.data_dir / "local-copies" / "big.zip"
    expected = await asyncio.to_thread(write_big_copy, target, 200 * 1024 * 1024, tmp_path / "scratch")
    listed = {c["fileName"]: c["id"] for c in (await execute(proc, "{ localCopies { id fileName } }"))["localCopies"]}
    url = await link(proc, listed["big.zip"])

    baseline = proc.memory_bytes()
    peak = baseline
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, proc.memory_bytes())
            time.sleep(0.02)

    def download() -> str:
        hasher = hashlib.sha256()
        with httpx.stream("GET", url, timeout=60) as response:
            assert response.status_code == 200
            for chunk in response.iter_bytes(256 * 1024):
                hasher.update(chunk)
                time.sleep(0.0005)  # a slower reader than the server: backpressure must hold
        return hasher.hexdigest()

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        digest = await asyncio.to_thread(download)
    finally:
        stop.set()
        sampler.join()
    target.unlink()
    assert digest == expected
    growth = peak - baseline
    assert growth < 50 * 1024 * 1024, f"server memory grew {growth / 2**20:.1f} MiB"


async def test_a_client_that_stops_reading_is_cut_off_and_frees_the_copy(make_server, tmp_path: Path) -> None:
    """A download whose client takes nothing more within the stall limit (here 1 s) ends, so
    the copy it held can be deleted; while the client still reads, the delete is BUSY."""
    proc = make_server(BACKUPS_BODY_TIMEOUT_SECONDS="1").start()
    target = proc.data_dir / "local-copies" / "stalled.zip"
    await asyncio.to_thread(write_big_copy, target, 64 * 1024 * 1024, tmp_path / "scratch")
    listed = {c["fileName"]: c["id"] for c in (await execute(proc, "{ localCopies { id fileName } }"))["localCopies"]}
    url = httpx.URL(await link(proc, listed["stalled.zip"]))
    delete = "mutation($id: ID!) { deleteLocalCopy(id: $id) { deletedId userErrors { code } } }"

    reader, writer = await asyncio.open_connection(url.host, url.port)
    try:
        writer.write(f"GET {url.raw_path.decode()} HTTP/1.1\r\nHost: {url.host}\r\n\r\n".encode())
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        await reader.readexactly(1024 * 1024)  # it reads a little, then nothing more
        refused = (await execute(proc, delete, id=listed["stalled.zip"]))["deleteLocalCopy"]
        assert refused == {"deletedId": None, "userErrors": [{"code": "BUSY"}]}  # held while it streams

        async def deleted() -> bool:
            payload = (await execute(proc, delete, id=listed["stalled.zip"]))["deleteLocalCopy"]
            return payload["deletedId"] == listed["stalled.zip"]

        deadline = time.monotonic() + 30
        while not await deleted():
            assert time.monotonic() < deadline, "the stalled download still holds the copy"
            await asyncio.sleep(0.2)
        assert not target.exists()
    finally:
        writer.close()


async def test_link_refuses_a_file_rewritten_in_place_with_its_old_mtime(exported) -> None:
    """The same inode, size and mtime (written in place, then the mtime put back as `cp -p`,
    `rsync -t` or `tar` do): still another file, and its link is dead; the ctime tells."""
    proc, copy = exported
    rewritten = proc.data_dir / "local-copies" / "rewritten.zip"
    rewritten.write_bytes(path_of(proc, copy).read_bytes())
    listed = {c["fileName"]: c["id"] for c in (await execute(proc, "{ localCopies { id fileName } }"))["localCopies"]}
    url = await link(proc, listed["rewritten.zip"])
    url_untouched = await link(proc, copy["id"])
    before = rewritten.stat()

    with rewritten.open("r+b") as f:  # in place: the inode stays
        f.seek(before.st_size // 2)
        f.write(b"changed!")
    os.utime(rewritten, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = rewritten.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (before.st_ino, before.st_size, before.st_mtime_ns)

    response = httpx.get(url)
    assert response.status_code == 404 and "deleted or replaced" in response.text, response.status_code
    assert b"changed!" not in response.content
    assert httpx.get(url_untouched).status_code == 200
    # A link made now is for the file as it is now.
    assert httpx.get(await link(proc, listed["rewritten.zip"])).content == rewritten.read_bytes()
    rewritten.unlink()
