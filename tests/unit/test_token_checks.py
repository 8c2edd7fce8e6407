"""The periodic token checks of open websockets: many at once make one database lookup."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from server.model.access.tokens import Role
from server.services.access import AccessService
from server.storage.db.database import Database


class CountingDatabase(Database):
    """The real database, counting the reads made through it."""

    reads = 0

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Any]:
        self.reads += 1
        async with super().read() as session:
            yield session


async def service(tmp_path: Path) -> tuple[AccessService, CountingDatabase]:
    db = CountingDatabase(f"sqlite:///{tmp_path / 'tokens.db'}")
    await asyncio.to_thread(db.migrate)
    return AccessService(db, active_cache_seconds=60), db


async def test_checks_that_arrive_together_share_one_lookup(tmp_path: Path) -> None:
    access, db = await service(tmp_path)
    token, _ = await access.create(name="watcher", role=Role.VIEWER)
    answers = await asyncio.gather(*(access.is_active(token.id, recent_ok=True) for _ in range(200)))
    assert answers == [True] * 200 and db.reads == 1
    assert await access.is_active(token.id, recent_ok=True) and db.reads == 1  # cached
    assert await access.is_active(token.id) and db.reads == 2  # an operation's own check asks
    await db.close()


async def test_a_revoke_during_a_lookup_is_not_hidden_by_it(tmp_path: Path) -> None:
    access, db = await service(tmp_path)
    token, _ = await access.create(name="watcher", role=Role.VIEWER)
    before = asyncio.ensure_future(access.is_active(token.id, recent_ok=True))
    await asyncio.sleep(0)  # the lookup has started
    await access.revoke(token.id)
    await before  # whatever it saw, it must not be remembered as the answer
    assert await access.is_active(token.id, recent_ok=True) is False
    await db.close()


async def test_a_checker_that_goes_away_does_not_cancel_the_others(tmp_path: Path) -> None:
    access, db = await service(tmp_path)
    token, _ = await access.create(name="watcher", role=Role.VIEWER)
    leaving = asyncio.ensure_future(access.is_active(token.id, recent_ok=True))
    staying = asyncio.ensure_future(access.is_active(token.id, recent_ok=True))
    await asyncio.sleep(0)
    leaving.cancel()
    assert await staying is True and db.reads == 1
    await db.close()
