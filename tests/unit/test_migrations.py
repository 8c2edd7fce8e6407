"""Schema migrations on a real database (SQLite, or PostgreSQL with BACKUPS_TEST_DATABASE_URL):
the models match the newest schema, and 0003 moves restore points made under 0002 to shared
manifests without losing or changing an entry."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine, text

from server.model.manifests import manifest_id
from server.model.records import EntryKind, ManifestEntry
from server.storage.db import restore_points_repo as repo
from server.storage.db.database import MIGRATIONS, Database
from server.storage.db.tables import metadata
from tests.support.server_process import FreshDatabase

SHARED = [
    ManifestEntry("site", "conf", EntryKind.DIRECTORY, 0, None, 0o755, datetime(2026, 1, 2, 3, 4, 5, 678901, UTC)),
    ManifestEntry("site", "conf/app.yaml", EntryKind.FILE, 3, "a" * 64, 0o644, datetime(2026, 1, 2, tzinfo=UTC)),
    ManifestEntry("settings", "audio.json", EntryKind.FILE, 5, "b" * 64, 0o600, None),
]
OTHER = [*SHARED[:2], ManifestEntry("settings", "audio.json", EntryKind.FILE, 6, "c" * 64, 0o600, None)]
POINTS = {"rp_one": SHARED, "rp_two": SHARED, "rp_three": OTHER, "rp_empty": []}


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    fresh = FreshDatabase(tmp_path)
    db = Database(fresh.url)
    yield db
    fresh.drop()


def migrate(db: Database, action: str, revision: str) -> None:
    engine = create_engine(db.sync_url)
    try:
        with engine.begin() as connection:
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS))
            config.attributes["connection"] = connection
            getattr(command, action)(config, revision)
    finally:
        engine.dispose()


def fill_0002(engine: Engine) -> None:
    """Restore points as the 0002 schema held them: entries keyed by restore point."""
    with engine.begin() as connection:
        for number, (point_id, entries) in enumerate(POINTS.items()):
            connection.execute(
                text(
                    "INSERT INTO restore_point (id, label, origin, created_at, size_bytes, stored_bytes,"
                    " item_count, checksum, server_version) VALUES (:id, :id, 'MANUAL', :at, 0, 0, :n, :sum, 't')"
                ),
                {"id": point_id, "at": datetime(2026, 1, 1, number, tzinfo=UTC), "n": len(entries), "sum": "0" * 64},
            )
            for position, entry in enumerate(entries):
                connection.execute(
                    text(
                        "INSERT INTO restore_point_entry (restore_point_id, position, source, path, kind, size,"
                        " sha256, mode, mtime) VALUES (:rp, :pos, :source, :path, :kind, :size, :sha, :mode, :mtime)"
                    ),
                    {
                        "rp": point_id,
                        "pos": position,
                        "source": entry.source,
                        "path": entry.path,
                        "kind": entry.kind.value,
                        "size": entry.size,
                        "sha": entry.sha256,
                        "mode": entry.mode,
                        "mtime": entry.mtime,
                    },
                )


async def entries_of(db: Database) -> dict[str, list[ManifestEntry]]:
    async with db.read() as session:
        return {point_id: await repo.list_entries(session, point_id) for point_id in POINTS}


async def test_the_models_match_the_newest_schema(database: Database) -> None:
    database.migrate()
    engine = create_engine(database.sync_url)
    try:
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), metadata)
    finally:
        engine.dispose()
    assert differences == []


async def test_0003_shares_one_manifest_between_points_with_the_same_entries(database: Database) -> None:
    migrate(database, "upgrade", "0002")
    engine = create_engine(database.sync_url)
    try:
        fill_0002(engine)
        database.migrate()  # to the newest
        with engine.connect() as connection:
            manifests = set(connection.scalars(text("SELECT id FROM manifest")))
            rows = connection.scalar(text("SELECT count(*) FROM manifest_entry"))
            tables = set(connection.dialect.get_table_names(connection))
    finally:
        engine.dispose()
    # Ids as the server computes them, so a new capture of the same entries shares them too.
    assert manifests == {manifest_id(SHARED), manifest_id(OTHER), manifest_id([])}
    assert rows == len(SHARED) + len(OTHER)
    assert "restore_point_entry" not in tables
    assert await entries_of(database) == POINTS

    async with database.write() as session:  # a shared manifest outlives one of its points
        assert await repo.delete_restore_point(session, "rp_one") == set()
        assert await repo.delete_restore_point(session, "rp_two") == {"a" * 64, "b" * 64}
        assert not await repo.manifest_held(session, manifest_id(SHARED))
    await database.close()


async def test_0003_downgrades_back_to_entries_per_point(database: Database) -> None:
    migrate(database, "upgrade", "0002")
    engine = create_engine(database.sync_url)
    try:
        fill_0002(engine)
        database.migrate()
        migrate(database, "downgrade", "0002")
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT restore_point_id, count(*) FROM restore_point_entry GROUP BY restore_point_id")
            ).all()
            tables = set(connection.dialect.get_table_names(connection))
        assert dict(rows) == {point: len(entries) for point, entries in POINTS.items() if entries}
        assert not {"manifest", "manifest_entry", "restore_point_manifest"} & tables
        database.migrate()  # and up again: the same manifests
        assert await entries_of(database) == POINTS
    finally:
        engine.dispose()
        await database.close()


async def test_manifests_no_restore_point_refers_to_are_deleted(database: Database) -> None:
    migrate(database, "upgrade", "0002")
    engine = create_engine(database.sync_url)
    try:
        fill_0002(engine)
        database.migrate()
        with engine.begin() as connection:  # as if their points were removed behind our back
            connection.execute(text("DELETE FROM restore_point WHERE id IN ('rp_three', 'rp_empty')"))
    finally:
        engine.dispose()
    async with database.write() as session:
        assert await repo.delete_unused_manifests(session) == {"a" * 64, "c" * 64}
    async with database.read() as session:
        assert await repo.manifest_held(session, manifest_id(SHARED))
        assert not await repo.manifest_held(session, manifest_id(OTHER))
        assert not await repo.manifest_held(session, manifest_id([]))
        assert await repo.referenced_digests(session, ["a" * 64, "b" * 64, "c" * 64]) == {"a" * 64, "b" * 64}
    await database.close()


async def test_0012_gives_each_entry_made_before_it_its_folder(database: Database) -> None:
    migrate(database, "upgrade", "0002")
    engine = create_engine(database.sync_url)
    try:
        fill_0002(engine)
        database.migrate()
        with engine.connect() as connection:
            parents = {
                tuple(row) for row in connection.execute(text("SELECT source, path, parent FROM manifest_entry"))
            }
    finally:
        engine.dispose()
        await database.close()
    assert parents == {("site", "conf", ""), ("site", "conf/app.yaml", "conf"), ("settings", "audio.json", "")}
