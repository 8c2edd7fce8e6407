"""Every HTTP request checks its token; a remembered token skips the database, but never past a
write by anyone: a token revoked by another process (the CLI) is refused at once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import event

from server.model.access.tokens import Role
from server.services.access import AccessService
from server.storage.db.database import Database


@pytest.fixture
async def databases(tmp_path: Path) -> AsyncIterator[tuple[Database, Database]]:
    """The server's database and a second one on the same file, as the token CLI opens it."""
    url = f"sqlite:///{tmp_path / 'backups.db'}"
    server, cli = Database(url), Database(url)
    server.migrate()
    yield server, cli
    await server.close()
    await cli.close()


def count_statements(db: Database) -> list[str]:
    statements: list[str] = []
    event.listen(db.engine.sync_engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    return statements


async def test_the_data_version_moves_only_when_someone_writes(databases: tuple[Database, Database]) -> None:
    server, cli = databases
    first = server.data_version()
    assert first is not None
    assert server.data_version() == first  # nothing written in between
    await AccessService(cli).create(name="elsewhere", role=Role.VIEWER)
    after_other = server.data_version()
    assert after_other != first
    await AccessService(server).create(name="here", role=Role.VIEWER)  # through the server's own pool
    assert server.data_version() != after_other


async def test_a_known_token_is_not_looked_up_again(databases: tuple[Database, Database]) -> None:
    server, _ = databases
    access = AccessService(server)
    token, secret = await access.create(name="ci", role=Role.OPERATOR)
    statements = count_statements(server)
    assert (await access.authenticate(secret)) == token
    looked_up = len(statements)
    assert looked_up >= 1
    for _ in range(5):
        assert (await access.authenticate(secret)) == token
    assert len(statements) == looked_up


async def test_a_token_revoked_by_another_process_is_refused_at_once(databases: tuple[Database, Database]) -> None:
    server, cli = databases
    access = AccessService(server)
    token, secret = await access.create(name="ci", role=Role.OPERATOR)
    assert await access.authenticate(secret) == token
    assert await access.authenticate(secret) == token  # remembered now
    await AccessService(cli).revoke("ci")
    assert await access.authenticate(secret) is None
    assert await access.authenticate(secret) is None


async def test_unknown_secrets_are_not_remembered(databases: tuple[Database, Database]) -> None:
    server, cli = databases
    access = AccessService(server)
    _, secret = await access.create(name="ci", role=Role.OPERATOR)
    wrong = secret[:-4] + ("aaaa" if not secret.endswith("aaaa") else "bbbb")
    statements = count_statements(server)
    for _ in range(3):
        assert await access.authenticate(wrong) is None
    assert len(statements) == 3  # each unknown secret is looked up: nothing of it is kept


def test_postgresql_has_no_cheap_data_version() -> None:
    # Without one, every request looks its token up, exactly as before the cache.
    assert Database("postgresql://postgres@127.0.0.1:5432/test").data_version() is None


def test_an_in_memory_database_has_no_data_version_to_follow() -> None:
    # Each connection to :memory: is a database of its own: a version read on one would never
    # move for writes on another, so nothing may be remembered on its word.
    assert Database("sqlite:///:memory:").data_version() is None
