"""Every root field against every role, and with no, bad, expired and revoked tokens.

Driven by the schema and server/api/permissions.py MINIMUM_ROLE: a field added later is
called here too, with dummy arguments, and must answer exactly as its role says."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from server.api.permissions import MINIMUM_ROLE
from server.api.schema import schema
from server.model.access.tokens import Role
from tests.support import raw_ws
from tests.support.in_process import InProcessServer
from tests.support.operations_for_fields import FieldCall, every_root_field
from tests.support.server_process import ServerProcess

# Its tests share a module-scoped server: one xdist worker runs them all, so it is made once.
pytestmark = pytest.mark.xdist_group("access-roles")

CALLS = every_root_field(schema._schema)
NOT_VALID = ("none", "bad", "expired", "revoked")
CREDENTIALS = (*NOT_VALID, *(role.value for role in Role))
AUTH_CODES = {"UNAUTHENTICATED", "FORBIDDEN"}


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, dict[str, str | None]]]:
    """A server with a token of each kind."""
    proc = InProcessServer(data_dir=tmp_path_factory.mktemp("roles") / "data").start()
    expired = proc.create_token("matrix-expired", "admin", "--expires-in", "1s")
    tokens: dict[str, str | None] = {
        "none": None,
        "bad": "bk_" + "A" * 43,
        "viewer": proc.create_token("matrix-viewer", "viewer"),
        "operator": proc.create_token("matrix-operator", "operator"),
        "admin": proc.token,
        "expired": expired,
        "revoked": proc.create_token("matrix-revoked", "admin"),
    }
    proc.cli("token", "revoke", "matrix-revoked")
    proc.clock.advance(1.2)  # past the expiry, on the server's clock
    yield proc, tokens
    proc.close()


def expected_code(call: FieldCall, credential: str) -> str | None:
    if credential in NOT_VALID:
        return "UNAUTHENTICATED"
    return None if Role(credential).covers(MINIMUM_ROLE[call.key]) else "FORBIDDEN"


async def post(proc: ServerProcess, call: FieldCall, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(timeout=30) as client:
        return await client.post(
            proc.graphql_url, json={"query": call.document, "variables": call.variables}, headers=headers
        )


def assert_refused_unauthenticated(response: httpx.Response) -> None:
    """401 and a single coded error: no data, no location, nothing else."""
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    body = response.json()
    assert body["data"] is None
    assert len(body["errors"]) == 1
    assert set(body["errors"][0]) == {"message", "extensions"}
    assert body["errors"][0]["extensions"] == {"code": "UNAUTHENTICATED"}


def assert_forbidden(errors: list[dict[str, Any]], data: dict[str, Any] | None, call: FieldCall) -> None:
    assert [e["extensions"]["code"] for e in errors] == ["FORBIDDEN"], errors
    assert MINIMUM_ROLE[call.key].value in errors[0]["message"]
    assert data in (None, {call.field: None}), data


def assert_allowed(errors: list[dict[str, Any]]) -> None:
    """The call got past the permission check (it may still fail, e.g. NOT_FOUND for a dummy id)."""
    codes = {(e.get("extensions") or {}).get("code") for e in errors}
    assert not codes & AUTH_CODES, errors
    assert all(e["message"] != "Unexpected error." for e in errors), errors


@pytest.mark.parametrize("credential", CREDENTIALS)
@pytest.mark.parametrize("call", CALLS, ids=lambda call: call.key)
async def test_over_http(matrix: tuple[ServerProcess, dict[str, str | None]], call: FieldCall, credential: str) -> None:
    proc, tokens = matrix
    response = await post(proc, call, tokens[credential])
    expected = expected_code(call, credential)
    if expected == "UNAUTHENTICATED":
        assert_refused_unauthenticated(response)
        return
    assert response.status_code == 200, response.text
    body = response.json()
    if call.root == "Subscription":
        # Subscriptions run over websockets only (where their roles are checked, below):
        # over HTTP, whatever the role, they get a clear error and nothing else.
        assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_REQUEST"], body
        return
    if expected == "FORBIDDEN":
        assert_forbidden(body["errors"], body["data"], call)
    else:
        assert_allowed(body.get("errors") or [])


@pytest.mark.parametrize("credential", CREDENTIALS)
@pytest.mark.parametrize("call", CALLS, ids=lambda call: call.key)
async def test_over_websocket(
    matrix: tuple[ServerProcess, dict[str, str | None]], call: FieldCall, credential: str
) -> None:
    proc, tokens = matrix
    expected = expected_code(call, credential)
    async with raw_ws.opened(proc) as ws:
        if expected == "UNAUTHENTICATED":
            # Refused at connection_init, before any operation can start.
            await ws.send(
                f'{{"type": "connection_init", "payload": {_json(raw_ws.bearer_payload(tokens[credential]))}}}'
            )
            assert await raw_ws.close_code(ws) == 4403
            return
        assert (await raw_ws.init(ws, raw_ws.bearer_payload(tokens[credential])))["type"] == "connection_ack"
        await raw_ws.start(ws, "1", call.document, call.variables)
        # A refusal comes at once; a permitted subscription may simply wait for events.
        waiting = 0.5 if expected is None and call.root == "Subscription" else 15
        message = await raw_ws.next_message(ws, waiting)
        if expected == "FORBIDDEN":
            assert message is not None
            assert_forbidden(raw_ws.errors_of(message), (message.get("payload") or {}).get("data"), call)
        else:
            assert_allowed(raw_ws.errors_of(message))


def _json(value: object) -> str:
    import json

    return json.dumps(value)
