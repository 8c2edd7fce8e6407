from __future__ import annotations

import asyncio

from server.model.recent_pages import RecentPages


async def test_first_pages_are_read_once_until_forgotten() -> None:
    pages: RecentPages[list[int]] = RecentPages()
    reads = 0

    async def read() -> list[int]:
        nonlocal reads
        reads += 1
        return [reads]

    assert await pages.first_page(50, read) == [1]
    assert await pages.first_page(50, read) == [1]
    assert await pages.first_page(20, read) == [2]  # each page size has its own entry
    pages.forget()
    assert await pages.first_page(50, read) == [3]


async def test_a_read_overtaken_by_a_write_is_not_kept() -> None:
    pages: RecentPages[str] = RecentPages()
    started, release = asyncio.Event(), asyncio.Event()

    async def slow_read() -> str:
        started.set()
        await release.wait()
        return "before the write"

    reader = asyncio.ensure_future(pages.first_page(50, slow_read))
    await started.wait()
    pages.forget()  # a restore point was added while the read was under way
    release.set()
    assert await reader == "before the write"  # that caller gets what it read ...

    async def fresh() -> str:
        return "after the write"

    assert await pages.first_page(50, fresh) == "after the write"  # ... nobody else does


async def test_count_is_kept_per_generation() -> None:
    pages: RecentPages[object] = RecentPages()
    counts = iter([7, 8])

    async def count() -> int:
        return next(counts)

    assert await pages.count(count) == 7
    assert await pages.count(count) == 7
    pages.forget()
    assert await pages.count(count) == 8
