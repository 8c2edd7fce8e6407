"""GraphQL over HTTP's response types: `application/graphql-response+json` when the client asks
for it (the spec's status codes: 400 and no `data` on a request error), `application/json`
exactly as before otherwise (200 with `data: null` and the errors). The spec's own audit runs
in tests/test_graphql_over_http_audit.py."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.api import auth_headers
from tests.support.server_process import ServerProcess

SPEC = "application/graphql-response+json"
NOT_PARSING = "{ modules { name }"
NOT_VALID = "{ modules { nosuchfield } }"
NOT_COERCING = ("query($id: ID!) { operation(id: $id) { id } }", {"id": {"not": "an id"}})


def post(server: ServerProcess, query: str, variables: dict[str, Any] | None = None, **headers: str) -> httpx.Response:
    body = {"query": query, "variables": variables or {}}
    return httpx.post(server.graphql_url, json=body, headers={**auth_headers(server), **headers}, timeout=30)


@pytest.mark.parametrize(
    ("query", "variables"),
    [(NOT_PARSING, None), (NOT_VALID, None), NOT_COERCING],
    ids=["parse", "validation", "variables"],
)
def test_a_request_error_is_400_without_data_for_the_spec_type(server: ServerProcess, query: str, variables) -> None:
    for accept in (SPEC, f"{SPEC}, application/json;q=0.9", f"application/json;q=0.5, {SPEC}"):
        response = post(server, query, variables, accept=accept)
        assert response.status_code == 400, (accept, response.text)
        assert response.headers["content-type"].startswith(SPEC)
        body = response.json()
        assert "data" not in body and body["errors"][0]["message"], body


@pytest.mark.parametrize(
    ("query", "variables"),
    [(NOT_PARSING, None), (NOT_VALID, None), NOT_COERCING],
    ids=["parse", "validation", "variables"],
)
def test_a_request_error_is_unchanged_for_json_clients(server: ServerProcess, query: str, variables) -> None:
    for accept in (
        {"accept": "application/json"},
        {},
        {"accept": "*/*"},
        {"accept": f"{SPEC};q=0.1, application/json"},
    ):
        response = post(server, query, variables, **accept)
        assert response.status_code == 200, (accept, response.text)
        assert response.headers["content-type"] == "application/json"
        body = response.json()
        assert body["data"] is None and body["errors"][0]["message"], body


def test_an_executed_request_is_200_with_data_for_both_types(server: ServerProcess) -> None:
    # A field error (an unknown id is null, no error; a bad cursor is an error in a field): 200.
    for accept in (SPEC, "application/json"):
        ok = post(server, "{ modules { name } }", accept=accept)
        assert ok.status_code == 200 and ok.headers["content-type"].startswith(accept), ok.text
        assert ok.json()["data"]["modules"], ok.text
        field_error = post(server, '{ restorePoints(after: "not a cursor") { totalCount } }', accept=accept)
        assert field_error.status_code == 200, field_error.text
        body = field_error.json()
        assert "data" in body and body["errors"][0]["path"] == ["restorePoints"], body


def test_a_body_that_is_not_json_is_400_for_both_types(server: ServerProcess) -> None:
    headers = {**auth_headers(server), "content-type": "application/json"}
    spec = httpx.post(server.graphql_url, content=b"{not json", headers={**headers, "accept": SPEC})
    assert spec.status_code == 400 and spec.headers["content-type"].startswith(SPEC)
    assert "data" not in spec.json() and spec.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    plain = httpx.post(server.graphql_url, content=b"{not json", headers=headers)
    assert plain.status_code == 400 and plain.headers["content-type"] == "application/json"
    assert plain.json()["data"] is None and plain.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


def test_a_missing_token_stays_401_for_the_spec_type(server: ServerProcess) -> None:
    if not server.token:
        pytest.skip("authentication is off on this server")
    response = httpx.post(server.graphql_url, json={"query": "{ modules { name } }"}, headers={"accept": SPEC})
    assert response.status_code == 401 and response.headers["content-type"].startswith(SPEC)
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
