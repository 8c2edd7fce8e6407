"""Errors as the contract says: userErrors for expected failures, limits, masking."""

from __future__ import annotations

import pytest

from tests.support.api import execute, execute_errors, subscribe
from tests.support.server_process import ServerProcess

UNKNOWN_OP = "op_0000000000000000000000ff"
UNKNOWN_RP = "rp_0000000000000000000000ff"


@pytest.mark.parametrize(
    ("mutation", "field_name"),
    [
        ("cancelOperation(id: $id) { operation { id } userErrors { code field message } }", "cancelOperation"),
        ("dismissOperation(id: $id) { operation { id } userErrors { code field message } }", "dismissOperation"),
        ("deleteRestorePoint(id: $id) { deletedId userErrors { code field message } }", "deleteRestorePoint"),
    ],
)
async def test_unknown_ids_give_not_found(server: ServerProcess, mutation: str, field_name: str) -> None:
    target = UNKNOWN_RP if "RestorePoint" in mutation else UNKNOWN_OP
    data = await execute(server, f"mutation($id: ID!) {{ {mutation} }}", id=target)
    errors = data[field_name]["userErrors"]
    assert len(errors) == 1
    assert errors[0]["code"] == "NOT_FOUND" and errors[0]["field"] == "id"
    assert target in errors[0]["message"]


async def test_unknown_ids_in_queries_are_null(server: ServerProcess) -> None:
    data = await execute(
        server,
        "query($op: ID!, $rp: ID!) { operation(id: $op) { id } restorePoint(id: $rp) { id } node(id: $rp) { id } }",
        op=UNKNOWN_OP,
        rp=UNKNOWN_RP,
    )
    assert data == {"operation": None, "restorePoint": None, "node": None}


async def test_unknown_id_in_subscription_is_a_coded_error(server: ServerProcess) -> None:
    with pytest.raises(Exception) as raised:
        async for _ in subscribe(server, "subscription($id: ID!) { operationProgress(id: $id) { id } }", id=UNKNOWN_OP):
            pass
    errors = raised.value.errors  # type: ignore[attr-defined]
    assert errors[0]["extensions"]["code"] == "NOT_FOUND"
    assert UNKNOWN_OP in errors[0]["message"]


async def test_too_deep_query_is_refused(server: ServerProcess) -> None:
    deep = "id " + "restorePoint { localCopies { restorePoint { localCopies { " * 4 + "id" + " } } } }" * 4
    query = f"{{ operations {{ nodes {{ {deep} }} }} }}"
    errors = await execute_errors(server, query)
    assert "exceeds maximum operation depth" in errors[0]["message"]


async def test_too_many_aliases_are_refused(server: ServerProcess) -> None:
    query = "{ " + " ".join(f"a{i}: modules {{ name }}" for i in range(40)) + " }"
    errors = await execute_errors(server, query)
    assert "aliases" in errors[0]["message"].lower()


async def test_too_many_tokens_are_refused(server: ServerProcess) -> None:
    query = "{ modules { " + "name " * 2500 + "} }"
    errors = await execute_errors(server, query)
    assert "token" in errors[0]["message"].lower()


async def test_syntax_errors_are_shown_not_masked(server: ServerProcess) -> None:
    errors = await execute_errors(server, "{ restorePoints { edges { node { nosuchfield } } } }")
    assert "nosuchfield" in errors[0]["message"]


async def test_control_characters_never_reach_the_database(server: ServerProcess) -> None:
    """PostgreSQL refuses NUL in text: such input must be a clear error or "not found", never
    an unexpected one (the fuzz run found these)."""
    nul = "x\u0000y"
    data = await execute(
        server,
        "query($id: ID!) { operation(id: $id) { id } restorePoint(id: $id) { id } node(id: $id) { id } }",
        id=f"op_{nul}",
    )
    assert data == {"operation": None, "restorePoint": None, "node": None}
    for mutation, field in (
        ("cancelOperation(id: $v) { userErrors { code } }", "cancelOperation"),
        ("dismissOperation(id: $v) { userErrors { code } }", "dismissOperation"),
        ("deleteRestorePoint(id: $v) { userErrors { code } }", "deleteRestorePoint"),
    ):
        result = await execute(server, f"mutation($v: ID!) {{ {mutation} }}", v=nul)
        assert result[field]["userErrors"] == [{"code": "NOT_FOUND"}]
    created = await execute(
        server, "mutation($l: String) { createRestorePoint(label: $l) { userErrors { code field } } }", l=nul
    )
    assert created["createRestorePoint"]["userErrors"] == [{"code": "INVALID_INPUT", "field": "label"}]
    updated = await execute(
        server, "mutation($m: String!) { updateSettings(module: $m, values: {a: 1}) { userErrors { code } } }", m=nul
    )
    assert updated["updateSettings"]["userErrors"] == [{"code": "NOT_FOUND"}]
    errors = await execute_errors(server, "query($r: String) { operations(requestedBy: $r) { totalCount } }", r=nul)
    assert errors[0]["extensions"]["code"] == "INVALID_INPUT"
