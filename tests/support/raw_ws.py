"""graphql-transport-ws by hand, for tests that must see close codes and exact messages."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.support.server_process import Caller, ServerProcess

PROTOCOL = "graphql-transport-ws"


def bearer_payload(token: str | None) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"} if token else {}


@asynccontextmanager
async def opened(
    server: ServerProcess | Caller, headers: dict[str, str] | None = None
) -> AsyncIterator[ClientConnection]:
    """A websocket to /graphql speaking graphql-transport-ws, not yet initialised."""
    async with connect(server.ws_url, subprotocols=[PROTOCOL], additional_headers=headers) as ws:  # type: ignore[list-item]
        yield ws


async def init(ws: ClientConnection, payload: dict[str, Any] | None) -> dict[str, Any]:
    """Send connection_init; returns the reply (connection_ack), or raises ConnectionClosed."""
    message: dict[str, Any] = {"type": "connection_init"}
    if payload is not None:
        message["payload"] = payload
    await ws.send(json.dumps(message))
    return json.loads(await asyncio.wait_for(ws.recv(), 10))


async def close_code(ws: ClientConnection, timeout: float = 10) -> int | None:
    """Wait for the server to close the connection; its close code."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), timeout)
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None


async def start(ws: ClientConnection, op_id: str, query: str, variables: dict[str, Any] | None = None) -> None:
    payload: dict[str, Any] = {"query": query}
    if variables:
        payload["variables"] = variables
    await ws.send(json.dumps({"id": op_id, "type": "subscribe", "payload": payload}))


async def next_message(ws: ClientConnection, timeout: float) -> dict[str, Any] | None:
    """The next message from the server, or None when none came within `timeout`."""
    try:
        return json.loads(await asyncio.wait_for(ws.recv(), timeout))
    except TimeoutError:
        return None


def errors_of(message: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The GraphQL errors an `error` or `next` message carries."""
    if message is None:
        return []
    if message["type"] == "error":
        return message["payload"]
    if message["type"] == "next":
        return message["payload"].get("errors") or []
    return []
