"""Subscribers of one log share each event's execution and encoding, yet each gets its own
exact graphql-transport-ws frames: its ids, its document's fields, its complete."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from websockets.asyncio.client import ClientConnection

from tests.support.api import create_restore_point, execute, subscribe
from tests.support.raw_ws import bearer_payload, init, opened, start
from tests.support.server_process import ServerProcess

LOG = "subscription($id: ID!) { operationLog(id: $id) { sequence message } }"
OTHER = "subscription($id: ID!) { operationLog(id: $id) { level at sequence } }"


async def frames_until_complete(ws: ClientConnection, ids: set[str]) -> dict[str, list[dict[str, Any]]]:
    """Each subscription's `data` payloads, checking every frame against the protocol."""
    data: dict[str, list[dict[str, Any]]] = {op_id: [] for op_id in ids}
    open_ids = set(ids)
    while open_ids:
        message = json.loads(await asyncio.wait_for(ws.recv(), 30))
        assert message["type"] in ("next", "complete"), message
        assert message["id"] in open_ids, f"a frame for an unknown or completed subscription: {message}"
        if message["type"] == "complete":
            assert set(message) == {"id", "type"}
            open_ids.discard(message["id"])
            continue
        assert set(message) == {"id", "type", "payload"} and set(message["payload"]) == {"data"}, message
        data[message["id"]].append(message["payload"]["data"]["operationLog"])
    return data


async def test_subscribers_sharing_events_each_get_their_own_valid_frames(slow_server: ServerProcess) -> None:
    viewer = slow_server.create_token(f"shared-{uuid.uuid4().hex[:8]}", "viewer")
    op_id = (await create_restore_point(slow_server, label="watched by many"))["id"]
    variables = {"id": op_id}

    async def gql_client() -> list[dict[str, Any]]:
        return [event["operationLog"] async for event in subscribe(slow_server, LOG, **variables)]

    async with opened(slow_server) as admin_ws, opened(slow_server.with_token(viewer)) as viewer_ws:
        assert (await init(admin_ws, bearer_payload(slow_server.token)))["type"] == "connection_ack"
        assert (await init(viewer_ws, bearer_payload(viewer)))["type"] == "connection_ack"
        for op, query in (("a", LOG), ("b", LOG), ("other", OTHER)):
            await start(admin_ws, op, query, variables)
        await start(viewer_ws, "a", LOG, variables)  # the same id on another connection
        admin, as_viewer, via_gql = await asyncio.gather(
            frames_until_complete(admin_ws, {"a", "b", "other"}),
            frames_until_complete(viewer_ws, {"a"}),
            gql_client(),
        )

    final = await execute(
        slow_server, "query($id: ID!) { operation(id: $id) { log { sequence message level at } } }", **variables
    )
    log = final["operation"]["log"]
    assert len(log) >= 5
    lines = [{"sequence": line["sequence"], "message": line["message"]} for line in log]
    assert admin["a"] == admin["b"] == as_viewer["a"] == via_gql == lines
    assert admin["other"] == [{"level": line["level"], "at": line["at"], "sequence": line["sequence"]} for line in log]
