"""Relay connections: one generic Connection/Edge pair serves every paged list."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import strawberry

from server.model.records import Page

Node = TypeVar("Node")
Item = TypeVar("Item")


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[Node]):
    cursor: str
    node: Node


@strawberry.type(description="A page of a list (a Relay connection); the field that returns it says in what order.")
class Connection(Generic[Node]):
    edges: list[Edge[Node]]
    page_info: PageInfo
    counter: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field
    async def total_count(self) -> int:
        # Counted only when asked for: in a long history, counting costs more than a page.
        return await self.counter()

    @strawberry.field(description="The nodes of `edges`, for clients that need no cursors.")
    def nodes(self) -> list[Node]:
        return [edge.node for edge in self.edges]


def connection_of(
    page: Page[Item],
    convert: Callable[[Item], Node],
    *,
    after: str | None,
    count: Callable[[], Awaitable[int]] | None = None,
) -> Connection[Node]:
    """A domain page as a GraphQL connection; `count` serves totalCount for a page that was
    read without counting."""
    total = page.total_count

    async def counted() -> int:
        if total is not None:
            return total
        assert count is not None, "a page read without counting needs a counter"
        return await count()

    return Connection(
        edges=[Edge(cursor=c, node=convert(item)) for item, c in zip(page.items, page.cursors, strict=True)],
        page_info=PageInfo(
            has_next_page=page.has_next_page,
            has_previous_page=after is not None,
            start_cursor=page.cursors[0] if page.cursors else None,
            end_cursor=page.end_cursor,
        ),
        counter=counted,
    )
