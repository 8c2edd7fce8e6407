"""Keyset pagination over 100,000 restore points: right rows, and an index walk, no sort."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, insert, select, text

from server.model.manifests import manifest_id
from server.storage.db.cursors import encode_cursor, newest_first
from server.storage.db.database import Database
from server.storage.db.restore_points_repo import count_restore_points, page_restore_points
from server.storage.db.tables import ManifestRow, RestorePointRow

ROWS = 100_000
START = datetime(2020, 1, 1, tzinfo=UTC)


def fill(url: str) -> None:
    engine = create_engine(url)
    empty = manifest_id([])
    with engine.begin() as connection:
        connection.execute(insert(ManifestRow), [{"id": empty}])
        connection.execute(
            insert(RestorePointRow),
            [
                {
                    "id": f"rp_{index:024x}",
                    "label": f"point {index}",
                    "origin": "SCHEDULED",
                    "created_at": START + timedelta(minutes=index // 2),  # pairs share a moment
                    "size_bytes": index,
                    "stored_bytes": 0,
                    "item_count": 1,
                    "checksum": "0" * 64,
                    "server_version": "test",
                    "manifest_id": empty,
                }
                for index in range(ROWS)
            ],
        )
    engine.dispose()


async def test_deep_pages_use_the_index(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'pages.db'}")
    db.migrate()
    fill(db.sync_url)
    async with db.read() as session:
        first = await page_restore_points(session, first=50, after=None)
        assert first.total_count is None  # a page does not count: totalCount asks when wanted
        assert await count_restore_points(session) == ROWS
        assert [p.id for p in first.items] == [f"rp_{i:024x}" for i in range(ROWS - 1, ROWS - 51, -1)]

        # Continue after row 10,001, which shares its created_at with row 10,000.
        anchor = START + timedelta(minutes=10_001 // 2)
        page = await page_restore_points(session, first=3, after=encode_cursor(anchor, f"rp_{10_001:024x}"))
        assert [p.id for p in page.items] == [f"rp_{i:024x}" for i in (10_000, 9_999, 9_998)]
        assert page.has_next_page

        last = await page_restore_points(session, first=50, after=encode_cursor(START, f"rp_{1:024x}"))
        assert [p.id for p in last.items] == [f"rp_{0:024x}"] and not last.has_next_page

        query = newest_first(select(RestorePointRow), RestorePointRow, first=50, after=first.end_cursor)
        compiled = query.compile(db.engine.sync_engine, compile_kwargs={"literal_binds": True})
        plan = " ".join(str(row[-1]) for row in await session.execute(text(f"EXPLAIN QUERY PLAN {compiled}")))
    await db.close()
    assert "ix_restore_point_created" in plan, plan
    assert "TEMP B-TREE" not in plan, plan
