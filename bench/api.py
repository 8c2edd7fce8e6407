"""A few GraphQL calls the benchmarks make, over plain HTTP."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import httpx

OPERATION = "query($id: ID!) { operation(id: $id) { id status done startedAt finishedAt error { code message } restorePoint { id sizeBytes storedBytes itemCount } localCopy { id fileName sizeBytes } } }"


def headers(server: Any) -> dict[str, str]:
    """The server's admin token (its first start printed it), as clients send it."""
    return {"Authorization": f"Bearer {server.token}"} if server.token else {}


def graphql(server: Any, query: str, **variables: Any) -> dict[str, Any]:
    """The `data` of a request; raises on GraphQL errors and on userErrors of a payload."""
    response = httpx.post(
        server.graphql_url, json={"query": query, "variables": variables}, headers=headers(server), timeout=60
    )
    response.raise_for_status()
    body = response.json()
    if body.get("errors"):
        raise RuntimeError(body["errors"])
    for value in body["data"].values():
        if isinstance(value, dict) and value.get("userErrors"):
            raise RuntimeError(value["userErrors"])
    return body["data"]


def wait_done(server: Any, op_id: str, timeout: float = 600) -> dict[str, Any]:
    """Poll until the operation has finished; raises unless it SUCCEEDED."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        op = graphql(server, OPERATION, id=op_id)["operation"]
        if op["done"]:
            if op["status"] != "SUCCEEDED":
                raise RuntimeError(f"operation {op_id} ended {op['status']}: {op['error']}")
            return op
        # The time measured is the server's own (startedAt to finishedAt), so polling faster
        # would not make it more exact, only load the two cores that the server needs.
        time.sleep(0.1)
    raise TimeoutError(f"operation {op_id} still running after {timeout} s")


def seconds(op: dict[str, Any]) -> float:
    """How long the operation ran, by the server's own clock (start to finish)."""
    return (datetime.fromisoformat(op["finishedAt"]) - datetime.fromisoformat(op["startedAt"])).total_seconds()


def create_restore_point(server: Any, label: str = "bench") -> dict[str, Any]:
    data = graphql(
        server,
        "mutation($l: String) { createRestorePoint(label: $l) { operation { id } userErrors { message } } }",
        l=label,
    )
    return wait_done(server, data["createRestorePoint"]["operation"]["id"])


def export(server: Any, point_id: str, *, encrypt: bool = False) -> dict[str, Any]:
    data = graphql(
        server,
        "mutation($id: ID!, $e: Boolean!) { exportRestorePoint(restorePointId: $id, encrypt: $e)"
        " { operation { id } userErrors { message } } }",
        id=point_id,
        e=encrypt,
    )
    return wait_done(server, data["exportRestorePoint"]["operation"]["id"])
