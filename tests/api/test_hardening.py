"""What is open without a token (only /health, minimal), and the request limits."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.support import raw_ws
from tests.support.api import auth_headers
from tests.support.in_process import InProcessServer
from tests.support.server_process import ServerProcess

# Its tests share a module-scoped server: one xdist worker runs them all, so it is made once.
pytestmark = pytest.mark.xdist_group("hardening")


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


MULTIPART_UPLOAD = "mutation($f: Upload!) { uploadLocalCopy(file: $f) { localCopy { id } userErrors { code } } }"


def multipart_post(server: ServerProcess, operations: str, files: dict, **kwargs: object) -> httpx.Response:
    """A GraphQL multipart request (operations, map, then the files) with the token."""
    parts = {"operations": (None, operations), "map": (None, json.dumps({"0": ["variables.f"]})), **files}
    return httpx.post(server.graphql_url, files=parts, headers=auth_headers(server), timeout=60, **kwargs)


def assert_json_error(response: httpx.Response, status: int, code: str, says: str) -> None:
    assert response.status_code == status, (response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/json"), response.headers
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == code and says in error["message"], error


async def test_multipart_refusals_are_json_with_a_code(limited: ServerProcess, server: ServerProcess) -> None:
    """A part over the limit is 413, too many parts and a malformed body 400: JSON errors with
    extensions.code like every other error, never Starlette's plain text."""
    a_file = {"0": ("copy.zip", b"PK\x05\x06" + b"\0" * 18)}
    query = {"query": MULTIPART_UPLOAD, "variables": {"f": None}}
    # `operations` is a GraphQL request: no larger than a JSON request may be (4096 here).
    padded = json.dumps({**query, "query": MULTIPART_UPLOAD + " " * 5000})
    assert_json_error(multipart_post(limited, padded, a_file), 413, "PAYLOAD_TOO_LARGE", "limit of 4096 bytes")
    # At the default limit (1 MiB): Starlette's own "Part exceeded maximum size of 1024KB."
    huge = json.dumps({**query, "query": MULTIPART_UPLOAD + " " * (1024 * 1024 + 1)})
    assert_json_error(multipart_post(server, huge, a_file), 413, "PAYLOAD_TOO_LARGE", "limit of 1048576 bytes")

    for count in (17, 1001):  # one past ours (16), and one past Starlette's ("Too many files.")
        many = {str(n): (f"{n}.zip", b"x") for n in range(count)}
        assert_json_error(multipart_post(server, json.dumps(query), many), 400, "TOO_MANY_PARTS", "at most 16 files")
    fields = [("operations", json.dumps(query)), ("map", '{"0": ["variables.f"]}')]
    fields += [(f"extra{n}", "x") for n in range(20)]
    response = httpx.post(server.graphql_url, data=dict(fields), files=a_file, headers=auth_headers(server), timeout=60)
    assert_json_error(response, 400, "TOO_MANY_PARTS", "at most 16 files")

    headers = {**auth_headers(server), "Content-Type": "multipart/form-data"}  # no boundary
    missing = httpx.post(server.graphql_url, content=b"--x\r\n", headers=headers)
    assert_json_error(missing, 400, "BAD_REQUEST", "multipart body is malformed")
    headers["Content-Type"] = "multipart/form-data; boundary=x"
    nameless = b"--x\r\nContent-Disposition: form-data\r\n\r\nhello\r\n--x--\r\n"
    assert_json_error(
        httpx.post(server.graphql_url, content=nameless, headers=headers), 400, "BAD_REQUEST", "must be provided"
    )
    assert httpx.post(server.graphql_url, json={"query": "{ me { name } }"}, headers=auth_headers(server)).is_success
