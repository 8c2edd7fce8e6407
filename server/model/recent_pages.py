"""The first pages of the restore point history and its count, kept in memory between writes.

Listing history is by far the commonest request and changes only when a restore point is
added or deleted. The server is its database's only writer, so forgetting everything after
each such write (once it has committed) keeps these answers exact. A read that began before
a write may not store what it read: each entry carries the generation it was read in.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class RecentPages(Generic[T]):
    def __init__(self) -> None:
        self._generation = 0
        self._first_pages: dict[int, T] = {}  # page size -> the first page (no cursor)
        self._count: int | None = None

    def forget(self) -> None:
        """Call after every committed write that adds or removes a restore point."""
        self._generation += 1
        self._first_pages.clear()
        self._count = None

    async def first_page(self, first: int, read: Callable[[], Awaitable[T]]) -> T:
        """The first page of this size, read once per generation."""
        if (page := self._first_pages.get(first)) is not None:
            return page
        generation = self._generation
        page = await read()
        if generation == self._generation:
            self._first_pages[first] = page
        return page

    async def count(self, read: Callable[[], Awaitable[int]]) -> int:
        if self._count is not None:
            return self._count
        generation = self._generation
        count = await read()
        if generation == self._generation:
            self._count = count
        return count
