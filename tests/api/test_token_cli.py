"""`backups token create|list|revoke`, run as an administrator runs it, on the server's database."""

from __future__ import annotations

import hashlib
import json

from sqlalchemy import create_engine, text

from tests.support.api import execute, execute_errors
from tests.support.server_process import ServerProcess


def listed(proc: ServerProcess) -> dict[str, dict]:
    lines = proc.cli("token", "list", "--json").stdout.splitlines()
    return {(t := json.loads(line))["id"]: t for line in lines}


async def test_create_list_revoke(make_server) -> None:
    proc = make_server()  # not started: the CLI works on the database alone
    created = proc.cli("token", "create", "--name", "ci", "--role", "operator", "--expires-in", "30d")
    secret = created.stdout.strip()
    assert created.stdout == secret + "\n"  # only the token on stdout, for $(...)
    assert secret.startswith("bk_") and len(secret) == 46
    assert "only time it is shown" in created.stderr and "operator token 'ci'" in created.stderr

    (token,) = listed(proc).values()
    assert token["name"] == "ci" and token["role"] == "operator" and token["status"] == "active"
    assert token["hint"] == secret[:7] and token["createdBy"] == "cli" and token["expiresAt"]
    table = proc.cli("token", "list").stdout
    assert "ci" in table and "operator" in table and "active" in table and secret[:7] in table
    assert secret not in table

    again = proc.cli("token", "create", "--name", "ci", "--role", "viewer", check=False)
    assert again.returncode == 1 and "an active token named 'ci' exists" in again.stderr

    revoked = proc.cli("token", "revoke", "ci")
    assert "revoked operator token 'ci'" in revoked.stderr
    assert listed(proc)[token["id"]]["status"] == "revoked"
    # The name is free again; revoking by id works too.
    second = proc.create_token("ci", "viewer")
    second_id = next(t["id"] for t in listed(proc).values() if t["status"] == "active")
    proc.cli("token", "revoke", second_id)
    assert {t["status"] for t in listed(proc).values()} == {"revoked"}
    assert second != secret

    proc.start()  # tokens existed, even if revoked: no first-start admin token
    assert proc.token is None
    assert (await execute_errors(proc.with_token(second), "{ me { name } }"))[0]["extensions"]["code"] == (
        "UNAUTHENTICATED"
    )


async def test_bad_input_is_refused_and_changes_nothing(make_server) -> None:
    proc = make_server()
    proc.create_token("keep", "admin")
    # More names and durations are checked in tests/unit/test_access_rules.py.
    cases = [
        (["--name", "x y", "--role", "viewer"], 1, "a token name is"),
        (["--name", "ok", "--role", "root"], 2, "invalid choice"),
        (["--name", "ok", "--role", "viewer", "--expires-in", "soon"], 1, "not a duration"),
    ]
    for args, code, message in cases:
        result = proc.cli("token", "create", *args, check=False)
        assert (result.returncode, message in result.stderr) == (code, True), (args, result.stderr)
        assert not result.stdout.strip()
    unknown = proc.cli("token", "revoke", "nosuchtoken", check=False)
    assert unknown.returncode == 1 and "no token with id or active name 'nosuchtoken'" in unknown.stderr
    assert [t["name"] for t in listed(proc).values()] == ["keep"]


async def test_only_hashes_are_stored(make_server) -> None:
    proc = make_server().start()
    secret = proc.create_token("stored", "viewer")
    assert (await execute(proc.with_token(secret), "{ me { name } }"))["me"]["name"] == "stored"
    engine = create_engine(proc.database.url)  # type: ignore[union-attr]
    with engine.connect() as connection:
        rows = [dict(row._mapping) for row in connection.execute(text("SELECT * FROM api_token"))]
    engine.dispose()
    assert proc.token is not None
    for row in rows:
        values = " ".join(str(v) for v in row.values())
        assert secret not in values and proc.token not in values
    stored = next(row for row in rows if row["name"] == "stored")
    assert stored["token_hash"] == hashlib.sha256(secret.encode()).hexdigest()
    assert stored["hint"] == secret[:7]
