"""Fields of list items are looked up in batches: the restore points of a page of operations
in one query, the local copies of a page of restore points in one look at the folder."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import event

from bench.seed_rows import insert_restore_points
from server.api.loaders import make_loaders
from server.backend import Backend
from server.config.environment import ServerConfig


@pytest.fixture
async def backend(tmp_path: Path) -> AsyncIterator[Backend]:
    opened = await Backend.open(ServerConfig(data_dir=tmp_path / "data", auth="off"))
    yield opened
    await opened.close()


async def test_restore_points_of_many_items_come_in_one_query(backend: Backend) -> None:
    insert_restore_points(backend.config.data_dir / "backups.db", 30)
    ids = [p.id for p in (await backend.services.restore_points.page(first=30, after=None)).items]
    assert len(ids) == 30
    statements: list[str] = []
    event.listen(backend.db.engine.sync_engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    loaders = make_loaders(backend.services)
    wanted = ids + ["rp_" + "f" * 24, "not-an-id", ids[0]]
    found = await asyncio.gather(*(loaders.restore_points.load(point_id) for point_id in wanted))
    assert [p.id for p in found[:30]] == ids and found[-1].id == ids[0]
    assert found[30] is None and found[31] is None  # missing and malformed: null, no error
    # Only the loader's reads count: the server's own timers (the expiry timer's look at start)
    # may read meanwhile.
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT") and "restore_point.id IN" in s]) == 1


async def test_local_copies_of_many_restore_points_come_in_one_folder_listing(backend: Backend) -> None:
    insert_restore_points(backend.config.data_dir / "backups.db", 5)
    ids = [p.id for p in (await backend.services.restore_points.page(first=5, after=None)).items]
    folder = backend.services.local_copies
    listings = 0
    real_list = folder.list

    async def counted_list():  # type: ignore[no-untyped-def]
        nonlocal listings
        listings += 1
        return await real_list()

    folder.list = counted_list  # type: ignore[method-assign]
    loaders = make_loaders(backend.services)
    found = await asyncio.gather(*(loaders.local_copies_of.load(point_id) for point_id in ids))
    assert found == [[] for _ in ids] and listings == 1
