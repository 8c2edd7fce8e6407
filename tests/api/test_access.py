"""Tokens end to end: the first start, who did what, revocation (HTTP and open websockets),
the accepted token forms, and turning authentication off."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from gql.transport.exceptions import TransportConnectionFailed, TransportQueryError
from websockets.exceptions import ConnectionClosed

from tests.support import raw_ws
from tests.support.api import (
    OPERATION_FIELDS,
    create_and_wait,
    execute,
    execute_errors,
    subscribe,
    wait_for_change_listeners,
)
from tests.support.server_process import ROOT, ServerProcess

ME = "{ me { name role expiresAt } }"
OPERATIONS_BY = """query($by: String) { operations(first: 100, requestedBy: $by, includeDismissed: true) {
    totalCount nodes { id requestedBy } } }"""


def codes(errors: list[dict]) -> list[str]:
    return [e["extensions"]["code"] for e in errors]


async def test_first_start_prints_an_admin_token_once(make_server_process) -> None:
    proc = make_server_process().start()
    log = proc.log_path.read_text()
    assert proc.token is not None and proc.token.startswith("bk_") and len(proc.token) == 46
    assert log.count(proc.token) == 1
    assert "shown only this once" in log and "Authorization: Bearer <token>" in log
    assert '{"authorization": "Bearer <token>"}' in log and "backups token create" in log
    assert (await execute(proc, ME))["me"] == {"name": "admin", "role": "ADMIN", "expiresAt": None}

    proc.stop()
    proc.start()  # tokens exist now: nothing new is made or printed
    assert proc.log_path.read_text().count("shown only this once") == 1
    listed = [json.loads(line) for line in proc.cli("token", "list", "--json").stdout.splitlines()]
    assert [(t["name"], t["role"], t["createdBy"], t["status"]) for t in listed] == [
        ("admin", "admin", "first start", "active")
    ]


async def test_me_names_the_token_and_its_expiry(server: ServerProcess) -> None:
    token = server.create_token("me-viewer", "viewer", "--expires-in", "2h")
    me = (await execute(server.with_token(token), ME))["me"]
    assert me["name"] == "me-viewer" and me["role"] == "VIEWER"
    expires = datetime.fromisoformat(me["expiresAt"])
    assert timedelta(minutes=119) < expires - datetime.now(UTC) <= timedelta(hours=2)


async def test_actions_record_the_token_name_and_operations_filter_by_it(make_server) -> None:
    proc = make_server().start()
    ci = proc.with_token(proc.create_token("nightly-ci", "operator"))
    mine = [await create_and_wait(ci, f"ci {i}") for i in range(2)]
    theirs = await create_and_wait(proc, "by the admin")

    for final in mine:
        assert final["requestedBy"] == "nightly-ci"
        point = (
            await execute(
                proc, "query($id: ID!) { restorePoint(id: $id) { createdBy } }", id=final["restorePoint"]["id"]
            )
        )["restorePoint"]
        assert point["createdBy"] == "nightly-ci"
    log = await execute(proc, "query($id: ID!) { operation(id: $id) { log { message } } }", id=mine[0]["id"])
    assert log["operation"]["log"][0]["message"] == "Queued by nightly-ci."
    assert theirs["requestedBy"] == "admin"

    by_ci = (await execute(proc, OPERATIONS_BY, by="nightly-ci"))["operations"]
    assert by_ci["totalCount"] == 2
    assert {n["id"] for n in by_ci["nodes"]} == {f["id"] for f in mine}
    by_admin = (await execute(proc, OPERATIONS_BY, by="admin"))["operations"]
    assert [n["id"] for n in by_admin["nodes"]] == [theirs["id"]]
    assert (await execute(proc, OPERATIONS_BY, by="nobody"))["operations"]["totalCount"] == 0


async def test_a_revoked_token_stops_working_at_once_over_http(server: ServerProcess) -> None:
    token = server.create_token("revoke-http", "operator")
    caller = server.with_token(token)
    assert (await execute(caller, ME))["me"]["name"] == "revoke-http"
    token_id = json.loads(
        next(line for line in server.cli("token", "list", "--json").stdout.splitlines() if '"revoke-http"' in line)
    )["id"]
    server.cli("token", "revoke", token_id)
    assert codes(await execute_errors(caller, ME)) == ["UNAUTHENTICATED"]
    assert codes(await execute_errors(caller, "mutation { createRestorePoint { userErrors { code } } }")) == [
        "UNAUTHENTICATED"
    ]


async def test_a_revoked_token_is_refused_at_the_next_websocket_operation(make_server) -> None:
    # Checking in the background is slowed right down, to show each operation checks by itself.
    proc = make_server(BACKUPS_AUTH_RECHECK_SECONDS="600").start()
    token = proc.create_token("revoke-ws", "viewer")
    async with raw_ws.opened(proc) as ws:
        assert (await raw_ws.init(ws, raw_ws.bearer_payload(token)))["type"] == "connection_ack"
        await raw_ws.start(ws, "1", ME)
        first = await raw_ws.next_message(ws, 10)
        assert first is not None and first["payload"]["data"]["me"]["name"] == "revoke-ws"
        assert (await raw_ws.next_message(ws, 10) or {}).get("type") == "complete"

        proc.cli("token", "revoke", "revoke-ws")
        await raw_ws.start(ws, "2", ME)
        refused = await raw_ws.next_message(ws, 10)
        assert codes(raw_ws.errors_of(refused)) == ["UNAUTHENTICATED"]
        assert "data" not in refused["payload"] or refused["payload"]["data"] is None  # type: ignore[index]
        await raw_ws.start(ws, "3", "subscription { operationsChanged { id } }")
        assert codes(raw_ws.errors_of(await raw_ws.next_message(ws, 10))) == ["UNAUTHENTICATED"]


async def test_a_revoked_or_expiring_token_ends_its_running_subscriptions(make_server) -> None:
    proc = make_server(BACKUPS_AUTH_RECHECK_SECONDS="0.2").start()
    token = proc.create_token("revoke-live", "viewer")
    async with raw_ws.opened(proc) as ws:
        assert (await raw_ws.init(ws, raw_ws.bearer_payload(token)))["type"] == "connection_ack"
        await raw_ws.start(ws, "1", "subscription { operationsChanged { id } }")
        assert await raw_ws.next_message(ws, 1) is None  # running, waiting for changes
        proc.cli("token", "revoke", "revoke-live")
        assert await raw_ws.close_code(ws, timeout=10) == 4403

    expiring = proc.create_token("expiring-live", "viewer", "--expires-in", "3s")
    async with raw_ws.opened(proc) as ws:
        assert (await raw_ws.init(ws, raw_ws.bearer_payload(expiring)))["type"] == "connection_ack"
        await raw_ws.start(ws, "1", "subscription { operationsChanged { id } }")
        await wait_for_change_listeners(proc, 1)  # running, waiting for changes
        proc.clock.advance(3.5)  # past the token's expiry, on the server's clock
        assert await raw_ws.close_code(ws, timeout=10) == 4403
    # The server let go of the subscription.
    health = httpx.get(f"{proc.url}/health", headers={"Authorization": f"Bearer {proc.token}"}).json()
    for _ in range(50):
        if health["operations"]["changeListeners"] == 0:
            break
        await asyncio.sleep(0.1)
        health = httpx.get(f"{proc.url}/health", headers={"Authorization": f"Bearer {proc.token}"}).json()
    assert health["operations"]["changeListeners"] == 0


@pytest.mark.parametrize(
    ("payload", "accepted"),
    [
        ("bearer", True),  # {"authorization": "Bearer <token>"}
        ("token", True),  # {"token": "<token>"}
        ("capitalised", True),  # {"Authorization": "Bearer <token>"}
        ("none", False),  # no payload
        ("empty", False),  # {}
        ("no-scheme", False),  # {"authorization": "<token>"}
        ("basic", False),  # {"authorization": "Basic <token>"}
        ("unknown", False),  # {"token": "bk_..."} that was never issued
        ("not-a-string", False),  # {"token": 12}
    ],
)
async def test_websocket_token_forms(server: ServerProcess, payload: str, accepted: bool) -> None:
    token = server.token
    payloads = {
        "bearer": {"authorization": f"Bearer {token}"},
        "token": {"token": token},
        "capitalised": {"Authorization": f"Bearer {token}"},
        "none": None,
        "empty": {},
        "no-scheme": {"authorization": token},
        "basic": {"authorization": f"Basic {token}"},
        "unknown": {"token": "bk_" + "B" * 43},
        "not-a-string": {"token": 12},
    }
    async with raw_ws.opened(server) as ws:
        if accepted:
            assert (await raw_ws.init(ws, payloads[payload]))["type"] == "connection_ack"
            await raw_ws.start(ws, "1", ME)
            reply = await raw_ws.next_message(ws, 10)
            assert reply is not None and reply["payload"]["data"]["me"]["name"] == "admin"
        else:
            message: dict = {"type": "connection_init"}
            if payloads[payload] is not None:
                message["payload"] = payloads[payload]
            await ws.send(json.dumps(message))
            assert await raw_ws.close_code(ws) == 4403


async def test_websocket_accepts_a_handshake_authorization_header(server: ServerProcess) -> None:
    async with raw_ws.opened(server, headers={"Authorization": f"Bearer {server.token}"}) as ws:
        assert (await raw_ws.init(ws, {}))["type"] == "connection_ack"
    # A bad token in connection_init is not rescued by a good header: the payload decides.
    async with raw_ws.opened(server, headers={"Authorization": f"Bearer {server.token}"}) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {"token": "bk_" + "D" * 43}}))
        assert await raw_ws.close_code(ws) == 4403


async def test_websocket_refuses_operations_before_connection_init(server: ServerProcess) -> None:
    async with raw_ws.opened(server) as ws:
        await raw_ws.start(ws, "1", "subscription { operationsChanged { id } }")
        assert await raw_ws.close_code(ws) == 4401


async def test_gql_client_sees_the_refusal(server: ServerProcess) -> None:
    with pytest.raises(TransportConnectionFailed) as raised:
        async for _ in subscribe(server.with_token(None), "subscription { operationsChanged { id } }"):
            pass
    cause: BaseException | None = raised.value
    while cause is not None and not isinstance(cause, ConnectionClosed):
        cause = cause.__cause__ or cause.__context__
    assert isinstance(cause, ConnectionClosed) and cause.rcvd is not None and cause.rcvd.code == 4403


@pytest.mark.parametrize(
    "header",
    [
        "Basic YWRtaW46YWRtaW4=",
        "Bearer",
        "Bearer \t bk_x",
        "Token {token}",
        "{token}",
        "Bearer bk_short",
        "Bearer x" * 40,
    ],
)
async def test_malformed_authorization_headers_are_unauthenticated(server: ServerProcess, header: str) -> None:
    response = httpx.post(
        server.graphql_url, json={"query": ME}, headers={"Authorization": header.format(token=server.token)}
    )
    assert response.status_code == 401
    assert codes(response.json()["errors"]) == ["UNAUTHENTICATED"]


async def test_the_bearer_scheme_is_case_insensitive(server: ServerProcess) -> None:
    response = httpx.post(server.graphql_url, json={"query": ME}, headers={"Authorization": f"bearer {server.token}"})
    assert response.json()["data"]["me"]["name"] == "admin"


@pytest.mark.parametrize(
    "query",
    [
        "{ __typename }",
        "{ __schema { queryType { name } } }",
        '{ __type(name: "Query") { name } }',
        "{ nosuchfield }",
        "{ restorePoints { totalCount } ",
        "mutation { deleteRestorePoint(id: 1) { deletedId } }",
    ],
)
async def test_nothing_is_parsed_or_shown_without_a_token(server: ServerProcess, query: str) -> None:
    """Introspection, even syntax and validation errors: a caller without a token learns nothing."""
    for response in (
        httpx.post(server.graphql_url, json={"query": query}),
        httpx.get(server.graphql_url, params={"query": query}),
    ):
        assert response.status_code == 401
        body = response.json()
        assert body["data"] is None and codes(body["errors"]) == ["UNAUTHENTICATED"]


async def test_auth_off_is_refused_beyond_loopback(tmp_path) -> None:
    # 192.0.2.1 is a documentation address: the server must refuse before trying to bind it.
    result = subprocess.run(
        [sys.executable, "-m", "server", "serve"],
        cwd=ROOT,
        env={
            "BACKUPS_DATA_DIR": str(tmp_path / "data"),
            "BACKUPS_AUTH": "off",
            "BACKUPS_HOST": "192.0.2.1",
            "BACKUPS_PORT": "9",
            "PATH": "/usr/bin:/bin",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "BACKUPS_AUTH=off is only allowed on a loopback address" in result.stderr
    assert not (tmp_path / "data").exists()


async def test_auth_off_on_loopback_is_loud_and_open(make_server_process) -> None:
    proc = make_server_process(BACKUPS_AUTH="off").start()
    assert proc.token is None  # no first token is made
    assert (await execute(proc, ME))["me"] == {"name": None, "role": "ADMIN", "expiresAt": None}
    final = await create_and_wait(proc, "nobody in particular")
    assert final["requestedBy"] is None
    async for event in subscribe(
        proc, f"subscription($id: ID!) {{ operationProgress(id: $id) {{ {OPERATION_FIELDS} }} }}", id=final["id"]
    ):
        assert event["operationProgress"]["status"] == "SUCCEEDED"
    proc.stop()
    proc.start()
    assert proc.log_path.read_text().count("AUTHENTICATION IS OFF") >= 4  # banner and log line, each start


async def test_gql_execute_with_another_token_or_none(server: ServerProcess) -> None:
    viewer = server.with_token(server.create_token("helper-viewer", "viewer"))
    assert (await execute(viewer, ME))["me"]["role"] == "VIEWER"
    with pytest.raises(TransportQueryError) as raised:
        await execute(viewer.with_token(None), ME)
    assert codes(raised.value.errors or []) == ["UNAUTHENTICATED"]
