"""What is open without a token (only /health, minimal), and the request limits."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.support import raw_ws
from tests.support.api import auth_headers
from tests.support.in_process import InProcessServer
from tests.support.server_process import ServerProcess


async def test_health_without_a_token_says_only_ok(server: ServerProcess) -> None:
    assert httpx.get(f"{server.url}/health").json() == {"status": "ok"}
    bad = httpx.get(f"{server.url}/health", headers={"Authorization": "Bearer bk_" + "C" * 43})
    assert bad.status_code == 200 and bad.json() == {"status": "ok"}
    detailed = httpx.get(f"{server.url}/health", headers=auth_headers(server)).json()
    assert set(detailed) == {"status", "version", "operations", "tasks"}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/graphql?query=%7Bmodules%7Bname%7D%7D"),
        ("POST", "/graphql"),
        ("GET", "/download/nosuchtoken"),
        ("GET", "/download/"),
        ("GET", "/download/..%2Fgraphql"),
        ("GET", "/download/x/../../graphql?query=%7Bmodules%7Bname%7D%7D"),
        ("POST", "/download/nosuchtoken"),
        ("GET", "/graphql/download/x"),
        ("GET", "/nosuchpage"),
    ],
)
async def test_nothing_else_answers_without_a_token(server: ServerProcess, method: str, path: str) -> None:
    """Only /health and signed download URLs are open; an unknown path under /download is no
    way around the token (signed URLs themselves are tested with the download route)."""
    response = httpx.request(
        method, f"{server.url}{path}", json={"query": "{ modules { name settings } }"} if method == "POST" else None
    )
    # 403 is the download route refusing a token it did not sign.
    assert response.status_code in (401, 403, 404, 405), (path, response.status_code, response.text)
    assert "settings" not in response.text and "audio" not in response.text


async def test_multipart_requests_need_an_authorization_header(server: ServerProcess) -> None:
    """A multipart POST is CORS-simple: any web page can make a browser send one."""
    operations = json.dumps({"query": "mutation { createRestorePoint { userErrors { code } } }", "variables": {}})
    files = {"operations": (None, operations), "map": (None, "{}")}
    refused = httpx.post(server.graphql_url, files=files)
    assert refused.status_code == 401
    assert refused.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    allowed = httpx.post(server.graphql_url, files=files, headers=auth_headers(server))
    assert allowed.status_code != 401 and allowed.status_code < 500


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory):
    proc = InProcessServer(
        data_dir=tmp_path_factory.mktemp("limits") / "data",
        env_overrides={"BACKUPS_MAX_REQUEST_BYTES": "4096", "BACKUPS_MAX_SUBSCRIPTIONS_PER_CONNECTION": "2"},
    ).start()
    yield proc
    proc.close()


def padded_query(size: int) -> dict[str, str]:
    return {"query": "{ me { name } }" + " " * size}


async def test_request_bodies_over_the_limit_are_refused(limited: ServerProcess) -> None:
    headers = auth_headers(limited)
    assert httpx.post(limited.graphql_url, json=padded_query(1000), headers=headers).status_code == 200
    declared = httpx.post(limited.graphql_url, json=padded_query(10_000), headers=headers)
    assert declared.status_code == 413
    assert declared.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"

    body = json.dumps(padded_query(10_000)).encode()

    def chunks():  # no Content-Length: the limit must hold while the body streams in
        for start in range(0, len(body), 1024):
            yield body[start : start + 1024]

    streamed = httpx.post(
        limited.graphql_url, content=chunks(), headers={**headers, "Content-Type": "application/json"}
    )
    assert streamed.status_code == 413


async def test_websocket_messages_over_the_limit_close_the_connection(limited: ServerProcess) -> None:
    async with raw_ws.opened(limited) as ws:
        assert (await raw_ws.init(ws, raw_ws.bearer_payload(limited.token)))["type"] == "connection_ack"
        await raw_ws.start(ws, "1", "{ me { name } }" + " " * 10_000)
        assert await raw_ws.close_code(ws) == 1009  # message too big


async def test_subscriptions_per_connection_are_capped(limited: ServerProcess) -> None:
    async with raw_ws.opened(limited) as ws:
        assert (await raw_ws.init(ws, raw_ws.bearer_payload(limited.token)))["type"] == "connection_ack"
        for op_id in ("1", "2"):
            await raw_ws.start(ws, op_id, "subscription { operationsChanged { id } }")
        assert await raw_ws.next_message(ws, 0.5) is None  # both running
        await raw_ws.start(ws, "3", "subscription { operationsChanged { id } }")
        refused = await raw_ws.next_message(ws, 10)
        assert refused is not None and refused["id"] == "3" and refused["type"] == "error"
        assert refused["payload"][0]["message"] == "Subscription limit reached"

        await ws.send(json.dumps({"id": "1", "type": "complete"}))
        await raw_ws.start(ws, "4", "{ me { name } }")
        reply = await raw_ws.next_message(ws, 10)
        assert reply is not None and reply["type"] == "next" and reply["payload"]["data"]["me"]["name"] == "admin"
