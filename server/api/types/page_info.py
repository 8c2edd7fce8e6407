"""Relay pagination info shared by every connection."""

from __future__ import annotations

import strawberry

from server.domain.models import Page


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None

    @classmethod
    def of(cls, page: Page[object], *, after: str | None) -> PageInfo:
        return cls(
            has_next_page=page.has_next_page,
            has_previous_page=after is not None,
            start_cursor=page.cursors[0] if page.cursors else None,
            end_cursor=page.end_cursor,
        )
