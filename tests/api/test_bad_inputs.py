"""Hostile or malformed input gets a clear error, never a 500 or a dropped connection, and
the server goes on serving: deep JSON values, bad multipart maps, malformed websocket
messages, subscriptions that do not parse."""

from __future__ import annotations

import json

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from tests.support import raw_ws
from tests.support.api import auth_headers, execute
from tests.support.server_process import ServerProcess

UPDATE = 'mutation($v: JSON!) { updateSettings(module: "audio", values: $v) { userErrors { code message field } } }'


def nested(depth: int, inner: str = "1", kind: str = "object") -> str:
    """JSON text with objects (or arrays) nested `depth` deep, built as text: no encoder recurses."""
    if kind == "object":
        return '{"a":' * depth + inner + "}" * depth
    return "[" * depth + inner + "]" * depth


def post_raw(server: ServerProcess, body: str) -> httpx.Response:
    headers = {**auth_headers(server), "Content-Type": "application/json"}
    return httpx.post(server.graphql_url, content=body, headers=headers, timeout=30)


async def audio_settings(server: ServerProcess) -> object:
    modules = (await execute(server, "{ modules { name settings } }"))["modules"]
    return next(module["settings"] for module in modules if module["name"] == "audio")


async def still_serves(server: ServerProcess) -> None:
    assert (await execute(server, "{ me { name } }"))["me"]["name"] == "admin"


@pytest.mark.parametrize("kind", ["object", "array"])
@pytest.mark.parametrize("depth", [65, 400, 1000])
async def test_settings_nested_too_deep_are_invalid_input(server: ServerProcess, kind: str, depth: int) -> None:
    before = await audio_settings(server)
    value = nested(depth, kind=kind) if kind == "object" else '{"x":' + nested(depth - 1, kind=kind) + "}"
    response = post_raw(server, json.dumps({"query": UPDATE}).rstrip("}") + ', "variables": {"v": ' + value + "}}")
    assert response.status_code == 200, response.text
    errors = response.json()["data"]["updateSettings"]["userErrors"]
    assert [(e["code"], e["field"]) for e in errors] == [("INVALID_INPUT", "values")], errors
    assert "more than 64 levels deep" in errors[0]["message"]
    assert await audio_settings(server) == before  # nothing changed
    await still_serves(server)


async def test_settings_nested_to_the_limit_are_kept(server: ServerProcess) -> None:
    value = '{"deep":' + nested(63) + "}"  # 64 levels in all
    response = post_raw(server, json.dumps({"query": UPDATE}).rstrip("}") + ', "variables": {"v": ' + value + "}}")
    assert response.json()["data"]["updateSettings"]["userErrors"] == []
    settings = await audio_settings(server)
    assert isinstance(settings, dict)
    depth, node = 0, settings["deep"]
    while isinstance(node, dict):
        depth, node = depth + 1, node["a"]
    assert (depth, node) == (63, 1)
    assert post_raw(server, json.dumps({"query": UPDATE, "variables": {"v": {"deep": None}}})).status_code == 200


async def test_a_deep_literal_is_refused_too(server: ServerProcess) -> None:
    before = await audio_settings(server)
    for depth in (65, 150):  # within what the GraphQL parser takes: the settings limit answers
        literal = "{a:" * depth + "1" + "}" * depth
        query = 'mutation { updateSettings(module: "audio", values: ' + literal + ") { userErrors { code } } }"
        response = post_raw(server, json.dumps({"query": query}))
        assert response.json()["data"]["updateSettings"]["userErrors"] == [{"code": "INVALID_INPUT"}]
    literal = "{a:" * 1000 + "1" + "}" * 1000  # beyond it: the parser's own syntax error
    query = 'mutation { updateSettings(module: "audio", values: ' + literal + ") { userErrors { code } } }"
    errors = post_raw(server, json.dumps({"query": query})).json()["errors"]
    assert "nested too deeply" in errors[0]["message"]
    assert await audio_settings(server) == before
    await still_serves(server)


async def test_variables_nested_beyond_the_json_parser_are_a_json_400(server: ServerProcess) -> None:
    response = post_raw(server, '{"query": "{ me { name } }", "variables": {"v": ' + nested(5000, kind="array") + "}}")
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    await still_serves(server)


UPLOAD = "mutation($f: Upload!) { uploadLocalCopy(file: $f) { localCopy { id } userErrors { code } } }"


@pytest.mark.parametrize(
    ("operations", "files_map", "says"),
    [
        ({"query": UPLOAD, "variables": {"f": None}}, {"0": ["variables.f.x.y"]}, "'variables.f', which is null"),
        ({"query": UPLOAD, "variables": {"f": None}}, {"0": ["variables.f.0"]}, "'variables.f', which is null"),
        ({"query": UPLOAD, "variables": {"f": "x"}}, {"0": ["variables.f.x"]}, "which is a string"),
        ({"query": UPLOAD, "variables": {"f": None}}, {"0": ["variables.g"]}, "'variables.g' is not in operations"),
        ({"query": UPLOAD, "variables": {"f": None}}, {"0": ["nothing.here"]}, "'nothing' is not in operations"),
        ({"query": UPLOAD, "variables": {"f": None}}, {"0": ["variables"]}, "must point at a null"),
        ({"query": UPLOAD, "variables": {"f": None}}, {"0": [""]}, "leads nowhere"),
        ({"query": UPLOAD, "variables": {"f": None}}, {"0": "variables.f"}, "must be an array of paths"),
        ({"query": UPLOAD, "variables": {"f": None}}, {"0": [7]}, "must be an array of paths"),
        ({"query": UPLOAD, "variables": {"f": None}}, {"1": ["variables.f"]}, "does not carry"),
        ({"query": UPLOAD, "variables": {"f": None}}, ["variables.f"], "`map` must be a JSON object"),
        ([{"query": UPLOAD, "variables": {"f": None}}], {"0": ["1.variables.f"]}, "no item '1'"),
        ([{"query": UPLOAD, "variables": {"f": None}}], {"0": ["x.variables.f"]}, "no item 'x'"),
        ("just a string", {"0": ["variables.f"]}, "`operations` must be a JSON object or array"),
    ],
)
async def test_bad_multipart_maps_are_a_clear_400(
    server: ServerProcess, operations: object, files_map: object, says: str
) -> None:
    copies_before = await execute(server, "{ localCopies { id } }")
    files = {
        "operations": (None, json.dumps(operations)),
        "map": (None, json.dumps(files_map)),
        "0": ("copy.zip", b"PK\x05\x06" + b"\0" * 18),
    }
    response = httpx.post(server.graphql_url, files=files, headers=auth_headers(server), timeout=30)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "BAD_REQUEST" and says in error["message"], error
    assert await execute(server, "{ localCopies { id } }") == copies_before
    await still_serves(server)


@pytest.mark.parametrize(
    ("frame", "says"),
    [
        ("[1,2]", "must be a JSON object, got an array"),
        ('"subscribe"', "must be a JSON object, got a string"),
        ("42", "must be a JSON object, got a number"),
        ("null", "must be a JSON object, got null"),
        ("{}", "needs a string `type`"),
        ('{"type": 5}', "needs a string `type`"),
        ('{"type": "nosuch"}', "Unknown message type"),
        ('{"type": "subscribe", "id": "1", "payload": null}', "`payload` of a subscribe message must be an object"),
        ('{"type": "subscribe", "id": "1", "payload": []}', "`payload` of a subscribe message must be an object"),
        ('{"type": "subscribe", "id": "1"}', "A subscribe message needs `payload`"),
        ('{"type": "subscribe", "payload": {"query": "{ me { name } }"}}', "needs `id`"),
        ('{"type": "subscribe", "id": 1, "payload": {"query": "{ me { name } }"}}', "`id` of a subscribe message"),
        ('{"type": "subscribe", "id": "1", "payload": {}}', "subscribe payload needs `query`"),
        ('{"type": "subscribe", "id": "1", "payload": {"query": 5}}', "`query` of a subscribe payload"),
        ('{"type": "subscribe", "id": "1", "payload": {"query": "{ me { name } }", "variables": [1]}}', "`variables`"),
        (
            '{"type": "subscribe", "id": "1", "payload": {"query": "{ me { name } }", "operationName": 3}}',
            "operationName",
        ),
        ('{"type": "complete"}', "A complete message needs `id`"),
        ('{"type": "complete", "id": ["1"]}', "`id` of a complete message"),
        ('{"type": "ping", "payload": "x"}', "`payload` of a ping message"),
        ('{"type": "connection_init", "payload": 5}', "`payload` of a connection_init message"),
    ],
)
async def test_malformed_websocket_messages_close_with_4400(server: ServerProcess, frame: str, says: str) -> None:
    async with raw_ws.opened(server) as ws:
        assert (await raw_ws.init(ws, raw_ws.bearer_payload(server.token)))["type"] == "connection_ack"
        await ws.send(frame)
        try:
            while True:
                await ws.recv()
        except ConnectionClosed as closed:
            received = closed.rcvd  # the server's close frame; None when it just dropped us
        assert received is not None, "the connection was dropped with no close frame"
        assert received.code == 4400 and says in received.reason, (received.code, received.reason)
    await still_serves(server)


async def test_malformed_connection_init_closes_with_4400(server: ServerProcess) -> None:
    for payload in ("[1]", '"token"', "7"):
        async with raw_ws.opened(server) as ws:
            await ws.send('{"type": "connection_init", "payload": ' + payload + "}")
            assert await raw_ws.close_code(ws) == 4400
    for payload in ({"authorization": 7}, {"token": ["x"]}, {"authorization": None}):  # no token in it: 4403
        async with raw_ws.opened(server) as ws:
            await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
            assert await raw_ws.close_code(ws) == 4403


async def test_a_null_payload_is_the_same_as_none(server: ServerProcess) -> None:
    async with raw_ws.opened(server, headers=auth_headers(server)) as ws:
        await ws.send('{"type": "connection_init", "payload": null}')
        assert json.loads(await ws.recv())["type"] == "connection_ack"  # the header's token counts
        await ws.send('{"type": "ping", "payload": null}')
        assert json.loads(await ws.recv())["type"] == "pong"


@pytest.mark.parametrize(
    "query",
    ["subscription { operationsChanged { id }", "subscription { oops", "{ me { name ", "subscription {{ x } }"],
)
async def test_a_subscription_that_does_not_parse_gets_an_error_message(server: ServerProcess, query: str) -> None:
    async with raw_ws.opened(server) as ws:
        assert (await raw_ws.init(ws, raw_ws.bearer_payload(server.token)))["type"] == "connection_ack"
        await raw_ws.start(ws, "bad", query)
        reply = await raw_ws.next_message(ws, 10)
        assert reply is not None and reply["type"] == "error" and reply["id"] == "bad", reply
        assert reply["payload"][0]["message"].startswith("Syntax Error"), reply
        # The connection goes on: the same id may be used again, and works.
        await raw_ws.start(ws, "bad", "{ me { name } }")
        answer = await raw_ws.next_message(ws, 10)
        assert answer is not None and answer["type"] == "next", answer
        assert answer["payload"]["data"]["me"]["name"] == "admin"


@pytest.mark.parametrize("literal", ["sqlite+aiosqlite", "2026-13-01", "tomorrow"])
async def test_a_date_that_does_not_parse_says_what_is_expected(server: ServerProcess, literal: str) -> None:
    """One clear line, the value and the form expected: not the parser's own detail (it said
    "invalid literal for int() with base 10: b'sqli'")."""
    body = json.dumps({"query": f'{{ restorePoints(createdAfter: "{literal}") {{ totalCount }} }}'})
    errors = post_raw(server, body).json()["errors"]
    assert [error["message"] for error in errors] == [
        f'Value cannot represent a DateTime: "{literal}". Expected an RFC 3339 date and time with its UTC'
        " offset, e.g. 2026-03-01T12:00:00+00:00."
    ]
    query = "query($t: DateTime) { restorePoints(createdAfter: $t) { totalCount } }"
    errors = post_raw(server, json.dumps({"query": query, "variables": {"t": literal}})).json()["errors"]
    assert len(errors) == 1 and "Expected an RFC 3339 date and time with its UTC offset" in errors[0]["message"]
    assert "invalid literal" not in errors[0]["message"]
