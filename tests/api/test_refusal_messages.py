"""A refused token says why, to its holder only: expired, revoked or unknown, over HTTP and in the
websocket's close reason."""

from __future__ import annotations

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from tests.support import raw_ws
from tests.support.in_process import InProcessServer
from tests.support.server_process import ServerProcess

# Its tests share a module-scoped server: one xdist worker runs them all, so it is made once.
pytestmark = pytest.mark.xdist_group("refusal-messages")


def message_for(server: ServerProcess, token: str | None) -> str:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.post(server.graphql_url, json={"query": "{ me { name } }"}, headers=headers)
    assert response.status_code == 401
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    return error["message"]


async def close_of(server: ServerProcess, token: str | None) -> tuple[int | None, str]:
    async with raw_ws.opened(server) as ws:
        try:
            await raw_ws.init(ws, raw_ws.bearer_payload(token))
        except ConnectionClosed as closed:
            assert closed.rcvd is not None
            return closed.rcvd.code, closed.rcvd.reason
    raise AssertionError("the connection was accepted")


@pytest.fixture(scope="module")
def refused(tmp_path_factory: pytest.TempPathFactory):
    proc = InProcessServer(data_dir=tmp_path_factory.mktemp("refusals") / "data").start()
    expired = proc.create_token("soon-expired", "viewer", "--expires-in", "1s")
    revoked = proc.create_token("to-revoke", "viewer")
    proc.cli("token", "revoke", "to-revoke")
    proc.clock.advance(1.3)  # past the expiry, on the server's clock
    yield proc, {"expired": expired, "revoked": revoked, "unknown": "bk_" + "Z" * 43}
    proc.close()


def test_each_refusal_says_why_over_http(refused) -> None:
    proc, tokens = refused
    assert "has expired" in message_for(proc, tokens["expired"])
    assert "has been revoked" in message_for(proc, tokens["revoked"])
    unknown = message_for(proc, tokens["unknown"])
    assert "knows no such token" in unknown and "expired" not in unknown
    assert "Authentication required" in message_for(proc, None)
    # A look-alike of an expired token (one character changed) learns nothing about it.
    near = tokens["expired"][:-1] + ("A" if tokens["expired"][-1] != "A" else "B")
    assert message_for(proc, near) == unknown


async def test_each_refusal_says_why_in_the_close_reason(refused) -> None:
    proc, tokens = refused
    assert await close_of(proc, tokens["expired"]) == (4403, "the API token has expired")
    assert await close_of(proc, tokens["revoked"]) == (4403, "the API token has been revoked")
    assert await close_of(proc, tokens["unknown"]) == (4403, "this server knows no such API token")
    code, reason = await close_of(proc, None)
    assert code == 4403 and "connection_init" in reason
