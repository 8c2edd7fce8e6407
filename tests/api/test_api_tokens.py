"""Tokens through the API, for admins: list (never a secret), create (the secret shown once, and
it works at once), revoke (it stops working at once), each bad input refused with nothing
changed, and the last active admin token kept."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.support.api import execute, execute_errors
from tests.support.in_process import InProcessServer

TOKENS = "{ apiTokens { id name role status hint createdBy expiresAt revokedAt } }"
CREATE = """mutation($name: String!, $role: Role!, $expires: Int) {
    createApiToken(name: $name, role: $role, expiresInSeconds: $expires) {
        secret token { id name role status hint createdBy expiresAt } userErrors { code field message } } }"""
REVOKE = """mutation($id: ID!) { revokeApiToken(id: $id) {
    token { id status revokedAt } userErrors { code field message } } }"""
ME = "{ me { name role } }"


async def status_with(server: InProcessServer, secret: str) -> int:
    async with httpx.AsyncClient(timeout=30) as client:
        answer = await client.post(
            server.graphql_url, json={"query": ME}, headers={"Authorization": f"Bearer {secret}"}
        )
    return answer.status_code


async def test_an_admin_creates_lists_and_revokes_a_token(make_server: Callable[..., InProcessServer]) -> None:
    server = make_server().start()
    made = (await execute(server, CREATE, name="ci-runner", role="OPERATOR", expires=3600))["createApiToken"]
    assert made["userErrors"] == []
    secret, token = made["secret"], made["token"]
    assert secret.startswith("bk_") and token["role"] == "OPERATOR" and token["status"] == "ACTIVE"
    assert secret.startswith(token["hint"]) and len(token["hint"]) < len(secret)
    assert token["expiresAt"] is not None and token["createdBy"] is not None

    # It works at once, with its role; the list shows it and never its secret.
    assert (await execute(server.with_token(secret), ME))["me"] == {"name": "ci-runner", "role": "OPERATOR"}
    listed = (await execute(server, TOKENS))["apiTokens"]
    assert [t["name"] for t in listed if t["id"] == token["id"]] == ["ci-runner"]
    assert secret not in str(listed)

    # Revoked, it stops working at once.
    revoked = (await execute(server, REVOKE, id=token["id"]))["revokeApiToken"]
    assert revoked["userErrors"] == [] and revoked["token"]["status"] == "REVOKED"
    assert await status_with(server, secret) == 401
    listed = (await execute(server, TOKENS))["apiTokens"]
    assert next(t for t in listed if t["id"] == token["id"])["revokedAt"] is not None


async def test_bad_inputs_are_refused_and_nothing_is_made(make_server: Callable[..., InProcessServer]) -> None:
    server = make_server().start()
    await execute(server, CREATE, name="taken", role="VIEWER")
    before = (await execute(server, TOKENS))["apiTokens"]
    for name, expires, field in (
        ("taken", None, "name"),  # an active token has this name
        ("", None, "name"),
        ("line\nbreak", None, "name"),
        ("fine", 0, "expiresInSeconds"),
        ("fine", -5, "expiresInSeconds"),
    ):
        answer = (await execute(server, CREATE, name=name, role="VIEWER", expires=expires))["createApiToken"]
        assert answer["secret"] is None and answer["token"] is None, name
        assert [(e["code"], e["field"]) for e in answer["userErrors"]] == [("INVALID_INPUT", field)], (name, answer)
    errors = await execute_errors(server, CREATE, name="fine", role="ROOT")
    assert "ROOT" in errors[0]["message"]
    unknown = (await execute(server, REVOKE, id="tok_000000000000000000000000"))["revokeApiToken"]
    assert [(e["code"], e["field"]) for e in unknown["userErrors"]] == [("NOT_FOUND", "id")]
    by_name = (await execute(server, REVOKE, id="taken"))["revokeApiToken"]  # ids only, not names
    assert [e["code"] for e in by_name["userErrors"]] == ["NOT_FOUND"]
    assert (await execute(server, TOKENS))["apiTokens"] == before


async def test_the_last_active_admin_token_is_kept(make_server: Callable[..., InProcessServer]) -> None:
    server = make_server().start()
    admins = [
        t for t in (await execute(server, TOKENS))["apiTokens"] if t["role"] == "ADMIN" and t["status"] == "ACTIVE"
    ]
    assert len(admins) == 1
    refused = (await execute(server, REVOKE, id=admins[0]["id"]))["revokeApiToken"]
    assert [(e["code"], e["field"]) for e in refused["userErrors"]] == [("INVALID_INPUT", "id")]
    assert "last active ADMIN token" in refused["userErrors"][0]["message"]
    assert (await execute(server, ME))["me"]["role"] == "ADMIN"  # still works
    # With a second admin, the first can go (here: the one asking revokes itself).
    second = (await execute(server, CREATE, name="second-admin", role="ADMIN"))["createApiToken"]
    gone = (await execute(server, REVOKE, id=admins[0]["id"]))["revokeApiToken"]
    assert gone["userErrors"] == [] and gone["token"]["status"] == "REVOKED"
    assert await status_with(server, server.token) == 401
    assert (await execute(server.with_token(second["secret"]), ME))["me"]["name"] == "second-admin"


@pytest.mark.parametrize("role", ["viewer", "operator"])
async def test_only_admins_see_or_touch_tokens(make_server: Callable[..., InProcessServer], role: str) -> None:
    server = make_server().start()
    caller = server.with_token(server.create_token(f"a-{role}", role))
    for query, variables in ((TOKENS, {}), (CREATE, {"name": "sneaky", "role": "ADMIN"}), (REVOKE, {"id": "tok_x"})):
        errors = await execute_errors(caller, query, **variables)
        assert errors[0]["extensions"]["code"] == "FORBIDDEN"
    assert "sneaky" not in str((await execute(server, TOKENS))["apiTokens"])
