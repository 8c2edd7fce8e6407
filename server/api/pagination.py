"""Checks on the page-size argument every connection takes."""

from __future__ import annotations

from server.api.errors import ClientError

DEFAULT_PAGE_SIZE = 20


def page_size(first: int | None, maximum: int) -> int:
    if first is None:
        return min(DEFAULT_PAGE_SIZE, maximum)
    if not 0 < first <= maximum:
        raise ClientError(f"first must be between 1 and {maximum}", "INVALID_INPUT")
    return first
