"""A background reader's manifest read (verification's): part by part, the same entries in the
same order as the whole read, and a cancel check between parts that stops it where it is."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, insert

from server.storage.db.database import Database
from server.storage.db.restore_points_repo import list_entries, list_entries_in_parts
from server.storage.db.tables import EntryRow, ManifestRow, RestorePointRow

ENTRIES = 5_003
MANIFEST = "m" * 64


class Stopped(Exception):
    pass


def fill(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(insert(ManifestRow), [{"id": MANIFEST}])
        connection.execute(
            insert(RestorePointRow),
            [
                {
                    "id": "rp_" + "0" * 24,
                    "label": "many",
                    "origin": "MANUAL",
                    "created_at": datetime(2026, 1, 1, tzinfo=UTC),
                    "size_bytes": ENTRIES,
                    "stored_bytes": 0,
                    "item_count": ENTRIES,
                    "checksum": "0" * 64,
                    "server_version": "test",
                    "manifest_id": MANIFEST,
                }
            ],
        )
        connection.execute(
            insert(EntryRow),
            [
                {
                    "manifest_id": MANIFEST,
                    "position": index,
                    "source": "site",
                    "path": f"f/{ENTRIES - index:05d}.txt",  # position order differs from path order
                    "kind": "FILE",
                    "size": 1,
                    "sha256": f"{index:064x}",
                    "mode": 0o644,
                    "mtime": None,
                    "parent": "f",
                }
                for index in range(ENTRIES)
            ],
        )
    engine.dispose()


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'entries.db'}")
    database.migrate()
    fill(database.sync_url)
    yield database
    await database.close()


async def test_parts_give_the_whole_manifest_in_order_with_a_check_after_each(db: Database) -> None:
    checks = 0

    async def between() -> None:
        nonlocal checks
        checks += 1

    async with db.read() as session:
        whole = await list_entries(session, "rp_" + "0" * 24)
        parts = await list_entries_in_parts(session, "rp_" + "0" * 24, 1000, between)
    assert len(whole) == ENTRIES and parts == whole
    assert checks == 6  # 5,003 entries in parts of 1,000


async def test_a_check_that_raises_stops_the_read_after_that_part(db: Database) -> None:
    seen = 0

    async def between() -> None:
        nonlocal seen
        seen += 1
        if seen == 2:
            raise Stopped

    async with db.read() as session:
        with pytest.raises(Stopped):
            await list_entries_in_parts(session, "rp_" + "0" * 24, 1000, between)
        # The session is still usable: the stream was closed.
        assert len(await list_entries(session, "rp_" + "0" * 24)) == ENTRIES
    assert seen == 2
