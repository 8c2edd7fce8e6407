"""Talk to the server as clients do: gql over HTTP for queries, websockets for subscriptions.

Every helper takes a server (an InProcessServer or a ServerProcess, which sends its admin token) or
`server.with_token(token)` (another token, or None for none)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
from gql import Client, GraphQLRequest
from gql.transport.aiohttp import AIOHTTPTransport
from gql.transport.exceptions import TransportQueryError
from gql.transport.websockets import WebsocketsTransport

from tests.support.server_process import Caller, ServerCommon

Target = ServerCommon | Caller

OPERATION_FIELDS = """
    id kind status done progress stage createdAt startedAt finishedAt requestedBy dismissed
    lastSequence error { code message } restorePoint { id label }
"""


def auth_headers(server: Target) -> dict[str, str]:
    """The Authorization header for the server's token (none without one)."""
    return {"Authorization": f"Bearer {server.token}"} if server.token else {}


def ws_transport(server: Target, **kwargs: Any) -> WebsocketsTransport:
    """A graphql-transport-ws transport that sends the token in connection_init."""
    if server.token:
        kwargs.setdefault("init_payload", {"authorization": f"Bearer {server.token}"})
    return WebsocketsTransport(
        url=server.ws_url,
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
        **kwargs,
    )


async def execute(server: Target, query: str, **variables: Any) -> dict[str, Any]:
    """Run a query or mutation over HTTP; raises TransportQueryError on GraphQL errors."""
    transport = AIOHTTPTransport(url=server.graphql_url, headers=auth_headers(server))
    async with Client(transport=transport) as session:
        return await session.execute(GraphQLRequest(query, variable_values=variables or None))


async def execute_errors(server: Target, query: str, **variables: Any) -> list[dict[str, Any]]:
    """Run a request that must fail with top-level GraphQL errors; returns them."""
    try:
        result = await execute(server, query, **variables)
    except TransportQueryError as error:
        assert error.errors, "expected GraphQL errors"
        return error.errors
    raise AssertionError(f"expected GraphQL errors, got data {result}")


async def subscribe(server: Target, query: str, **variables: Any) -> AsyncIterator[dict[str, Any]]:
    """Yield each event of a subscription over graphql-transport-ws until it completes."""
    async with Client(transport=ws_transport(server)) as session:
        async for event in session.subscribe(GraphQLRequest(query, variable_values=variables or None)):
            yield event


async def create_restore_point(server: Target, label: str | None = None, note: str | None = None) -> dict[str, Any]:
    data = await execute(
        server,
        f"""mutation($label: String, $note: String) {{
            createRestorePoint(label: $label, note: $note) {{
                operation {{ {OPERATION_FIELDS} }} userErrors {{ code message field }} }} }}""",
        label=label,
        note=note,
    )
    payload = data["createRestorePoint"]
    assert payload["userErrors"] == []
    return payload["operation"]


async def wait_for_operation(server: Target, op_id: str, timeout: float = 60) -> dict[str, Any]:
    """Follow operationProgress to the end; returns the final state."""

    async def follow() -> dict[str, Any]:
        last: dict[str, Any] | None = None
        async for event in subscribe(
            server,
            f"subscription($id: ID!) {{ operationProgress(id: $id) {{ {OPERATION_FIELDS} }} }}",
            id=op_id,
        ):
            last = event["operationProgress"]
        assert last is not None and last["done"], last
        return last

    return await asyncio.wait_for(follow(), timeout)


async def create_and_wait(server: Target, label: str | None = None) -> dict[str, Any]:
    op = await create_restore_point(server, label)
    final = await wait_for_operation(server, op["id"])
    assert final["status"] == "SUCCEEDED", final
    return final


LOG = "query($id: ID!) { operation(id: $id) { log { message } } }"


async def log_lines(server: Target, op_id: str) -> list[str]:
    """The messages of an operation's log, in order."""
    return [line["message"] for line in (await execute(server, LOG, id=op_id))["operation"]["log"]]


async def update_settings(server: Target, module: str, values: Any) -> dict[str, Any]:
    data = await execute(
        server,
        """mutation($module: String!, $values: JSON!) { updateSettings(module: $module, values: $values) {
            module { name settings updatedAt } userErrors { code message field } } }""",
        module=module,
        values=values,
    )
    return data["updateSettings"]


async def wait_until(condition: Callable[[], Any], timeout: float = 10, interval: float = 0.02) -> Any:
    """Poll `condition` until it returns something true (returned), instead of a fixed sleep."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not (result := condition()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not true within {timeout} s: {condition}")
        await asyncio.sleep(interval)
    return result


async def change_listeners(server: Target) -> int:
    """How many operationsChanged subscriptions the server holds now (from /health)."""
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{server.url}/health", headers=auth_headers(server))
    return response.json()["operations"]["changeListeners"]


async def wait_for_change_listeners(server: Target, at_least: int, timeout: float = 10) -> None:
    """Wait until the server has registered at least this many operationsChanged subscriptions."""
    deadline = asyncio.get_running_loop().time() + timeout
    while (count := await change_listeners(server)) < at_least:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{count} operationsChanged subscriptions after {timeout} s, wanted {at_least}")
        await asyncio.sleep(0.02)


async def labels_page_by_page(server: Target, query: str, **narrow: Any) -> list[str]:
    """Every restore point label `query` (a restorePoints listing with $first and $after) lets
    through, read two at a time; checks totalCount on the way."""
    labels: list[str] = []
    after = None
    while True:
        page = (await execute(server, query, first=2, after=after, **narrow))["restorePoints"]
        labels += [node["label"] for node in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert page["totalCount"] == len(labels)
    return labels
