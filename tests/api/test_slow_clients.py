"""Slow clients (slowloris): half-sent requests are closed after the header or body timeout,
while normal requests and big uploads go on working."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support.api import auth_headers, execute
from tests.support.in_process import InProcessServer
from tests.support.server_process import ServerProcess

# Its tests share a module-scoped server: one xdist worker runs them all, so it is made once.
pytestmark = pytest.mark.xdist_group("slow-clients")

TIMEOUT = 1.5  # both timeouts, in the test server's environment


@pytest.fixture(scope="module")
def impatient(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessServer]:
    proc = InProcessServer(
        data_dir=tmp_path_factory.mktemp("slow-clients") / "data",
        env_overrides={"BACKUPS_HEADER_TIMEOUT_SECONDS": str(TIMEOUT), "BACKUPS_BODY_TIMEOUT_SECONDS": str(TIMEOUT)},
    ).start()
    yield proc
    proc.close()


def half_sent(server: ServerProcess, data: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall(data)
    return sock


def closed_after(sock: socket.socket, limit: float) -> tuple[float | None, bytes]:
    """Seconds until the server closed the connection (None: still open after `limit`), and
    what it sent before."""
    start, received = time.monotonic(), b""
    sock.settimeout(0.2)
    while time.monotonic() - start < limit:
        try:
            data = sock.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            return time.monotonic() - start, received
        if not data:
            return time.monotonic() - start, received
        received += data
    return None, received


def request_head(server: ServerProcess, content_type: str, length: int) -> bytes:
    return (
        f"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {server.token}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


HALF_HEADERS = {
    "nothing": b"",
    "half a request line": b"POST /graph",
    "half the headers": b"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Len",
}


async def test_half_sent_headers_are_closed_after_the_header_timeout(impatient: ServerProcess) -> None:
    # 51 at once, as the report had 50: each closed about TIMEOUT after it connected.
    socks = [(name, half_sent(impatient, data)) for name, data in HALF_HEADERS.items() for _ in range(17)]
    started = time.monotonic()
    for name, sock in socks:
        took, _ = closed_after(sock, 10 * TIMEOUT)
        assert took is not None, f"{name}: still open after {10 * TIMEOUT} s"
        sock.close()
    waited = time.monotonic() - started
    assert TIMEOUT * 0.5 < waited < TIMEOUT * 6, waited
    await still_serves(impatient)


async def test_a_second_request_on_a_kept_alive_connection_is_timed_too(impatient: ServerProcess) -> None:
    body = json.dumps({"query": "{ me { name } }"}).encode()
    sock = half_sent(impatient, request_head(impatient, "application/json", len(body)) + body)
    sock.settimeout(10)
    assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    sock.sendall(b"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and no more
    took, _ = closed_after(sock, 10 * TIMEOUT)
    assert took is not None and took >= TIMEOUT * 0.5, took
    sock.close()


@pytest.mark.parametrize("content_type", ["application/json", "multipart/form-data; boundary=XX"])
async def test_a_stalled_body_gets_408_and_is_closed(impatient: ServerProcess, content_type: str) -> None:
    if content_type.startswith("multipart"):
        part = (
            b'--XX\r\nContent-Disposition: form-data; name="operations"\r\n\r\n{"query": "{ me { name } }"}\r\n--XX\r\n'
        )
    else:
        part = b'{"query": "{ me {'
    socks = [half_sent(impatient, request_head(impatient, content_type, 100_000) + part) for _ in range(20)]
    for sock in socks:
        took, received = closed_after(sock, 10 * TIMEOUT)
        assert took is not None, "a stalled body still held its connection"
        head, _, body = received.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408"), received[:200]
        assert json.loads(body)["errors"][0]["extensions"]["code"] == "REQUEST_TIMEOUT"
        sock.close()
    await still_serves(impatient)


async def test_a_body_that_keeps_coming_slowly_is_not_cut_off(impatient: ServerProcess) -> None:
    """The body timeout is for a stall, not for the whole body: pieces TIMEOUT/3 apart, for
    longer than TIMEOUT in all, still make a request that is answered."""
    body = json.dumps({"query": "{ me { name } }" + " " * 40}).encode()
    sock = half_sent(impatient, request_head(impatient, "application/json", len(body)))
    for start in range(0, len(body), 10):
        time.sleep(TIMEOUT / 3)
        sock.sendall(body[start : start + 10])
    sock.settimeout(10)
    assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    sock.close()


async def test_a_big_upload_still_works(impatient: ServerProcess, tmp_path) -> None:
    """A 64 MB upload streams for longer than the body timeout's per-piece wait would allow
    if it were a whole-body limit; it gets the upload's own answer (not a ZIP: INVALID_ARCHIVE)."""
    operations = {
        "query": "mutation($f: Upload!) { uploadLocalCopy(file: $f) { userErrors { code } } }",
        "variables": {"f": None},
    }
    files = {
        "operations": (None, json.dumps(operations)),
        "map": (None, json.dumps({"0": ["variables.f"]})),
        "0": ("big.zip", b"\0" * (64 * 1024 * 1024)),
    }
    response = httpx.post(impatient.graphql_url, files=files, headers=auth_headers(impatient), timeout=120)
    assert response.status_code == 200, response.text[:300]
    assert response.json()["data"]["uploadLocalCopy"]["userErrors"] == [{"code": "INVALID_ARCHIVE"}]


async def test_websockets_are_not_cut_by_the_timeouts(impatient: ServerProcess) -> None:
    from tests.support import raw_ws

    async with raw_ws.opened(impatient) as ws:
        assert (await raw_ws.init(ws, raw_ws.bearer_payload(impatient.token)))["type"] == "connection_ack"
        await raw_ws.start(ws, "1", "subscription { operationsChanged { id } }")
        assert await raw_ws.next_message(ws, TIMEOUT * 2) is None  # still open, nothing to say
        await raw_ws.start(ws, "2", "{ me { name } }")
        reply = await raw_ws.next_message(ws, 10)
        assert reply is not None and reply["payload"]["data"]["me"]["name"] == "admin"


async def still_serves(server: ServerProcess) -> None:
    assert (await execute(server, "{ me { name } }"))["me"]["name"] == "admin"
