"""Every top-level error carries extensions.code, as Apollo-style clients expect; and the typed
OperationError.errorCode beside the string code."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.support.api import auth_headers, create_restore_point, execute, execute_errors, subscribe, wait_for_operation
from tests.support.server_process import ServerProcess


def post(server: ServerProcess, body: dict) -> list[dict]:
    """Send a raw GraphQL request (no client-side parsing); its top-level errors."""
    response = httpx.post(server.graphql_url, json=body, headers=auth_headers(server))
    return response.json()["errors"]


def codes(errors: list[dict]) -> list[str | None]:
    return [(error.get("extensions") or {}).get("code") for error in errors]


async def test_an_unknown_field_is_a_validation_failure(server: ServerProcess) -> None:
    errors = await execute_errors(server, "{ restorePoints { totalCount noSuchField } }")
    assert codes(errors) == ["GRAPHQL_VALIDATION_FAILED"], errors
    assert "noSuchField" in errors[0]["message"]


async def test_limits_are_validation_failures(server: ServerProcess) -> None:
    deep = "id " + "restorePoint { localCopies { restorePoint { localCopies { " * 4 + "id" + " } } } }" * 4
    errors = await execute_errors(server, f"{{ operations {{ nodes {{ {deep} }} }} }}")
    assert codes(errors) == ["GRAPHQL_VALIDATION_FAILED"], errors


def test_a_syntax_error_is_a_parse_failure(server: ServerProcess) -> None:
    errors = post(server, {"query": "{ restorePoints { "})
    assert codes(errors) == ["GRAPHQL_PARSE_FAILED"], errors


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        ("query($id: ID!) { operation(id: $id) { id } }", {}),
        ("query($s: [OperationStatus!]) { operations(status: $s) { totalCount } }", {"s": ["NOT_A_STATUS"]}),
        ("query($n: Int) { operations(first: $n) { totalCount } }", {"n": "ten"}),
    ],
    ids=["missing", "unknown-enum-value", "wrong-type"],
)
def test_a_bad_variable_is_bad_user_input(server: ServerProcess, query: str, variables: dict) -> None:
    errors = post(server, {"query": query, "variables": variables})
    assert codes(errors) == ["BAD_USER_INPUT"], errors


def test_no_token_and_a_small_role_are_coded(server: ServerProcess) -> None:
    response = httpx.post(server.graphql_url, json={"query": "{ me { name } }"})
    assert codes(response.json()["errors"]) == ["UNAUTHENTICATED"]
    viewer = server.with_token(server.create_token("codes-viewer", "viewer"))
    errors = post(viewer, {"query": "mutation { createRestorePoint { operation { id } } }"})  # type: ignore[arg-type]
    assert codes(errors) == ["FORBIDDEN"], errors


async def test_a_subscription_validation_error_is_coded(server: ServerProcess) -> None:
    with pytest.raises(Exception) as raised:
        async for _ in subscribe(server, "subscription { operationsChanged { id noSuchField } }"):
            pass
    assert codes(raised.value.errors) == ["GRAPHQL_VALIDATION_FAILED"]  # type: ignore[attr-defined]


async def test_a_failed_operation_has_a_typed_error_code(
    make_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    config = tmp_path / "sources.toml"
    config.write_text(f'[[sources]]\nname = "site"\nkind = "directory"\npath = "{tmp_path}/missing"\n')
    server = make_server(BACKUPS_CONFIG=str(config)).start()
    op = await create_restore_point(server, "doomed")
    await wait_for_operation(server, op["id"])
    data = await execute(
        server, "query($id: ID!) { operation(id: $id) { status error { code errorCode } } }", id=op["id"]
    )
    assert data["operation"] == {
        "status": "FAILED",
        "error": {"code": "SOURCE_UNAVAILABLE", "errorCode": "SOURCE_UNAVAILABLE"},
    }
