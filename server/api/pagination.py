"""Checks on the page-size argument every connection takes, and the few pages last converted."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from server.api.errors import ClientError
from server.api.types.page_info import Connection, connection_of
from server.model.errors import UserErrorCode
from server.model.records import Page

DEFAULT_PAGE_SIZE = 20


def page_size(first: int | None, maximum: int) -> int:
    if first is None:
        return min(DEFAULT_PAGE_SIZE, maximum)
    if not 0 < first <= maximum:
        raise ClientError(f"first must be between 1 and {maximum}", UserErrorCode.INVALID_INPUT)
    return first


class RecentConnections:
    """The last few pages converted to connections, one per app (Services.connections).

    A service may hand out the very same page object until its next write (the restore points'
    first page): converting it again for every request is wasted work, and GraphQL objects are
    never changed, so the connection made for it is served again while the page is the same."""

    def __init__(self, size: int = 8) -> None:
        self._size = size
        self._converted: dict[tuple[object, ...], tuple[object, Connection[Any]]] = {}

    def connection(
        self,
        page: Page[Any],
        convert: Callable[[Any], Any],
        *,
        after: str | None,
        count: Callable[[], Awaitable[int]],
    ) -> Connection[Any]:
        """connection_of(page, convert, ...), or the one made for this very page before."""
        key = (id(page), convert, after, count)
        if (known := self._converted.get(key)) is not None and known[0] is page:
            return known[1]
        made = connection_of(page, convert, after=after, count=count)
        self._converted[key] = (page, made)  # the page is kept with it: its id is not reused
        if len(self._converted) > self._size:
            self._converted.pop(next(iter(self._converted)))
        return made
