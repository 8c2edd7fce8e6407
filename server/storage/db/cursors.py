"""Opaque keyset cursors for newest-first listings: (created_at, id) of the last row seen."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

from sqlalchemy import Select, literal, tuple_

from server.model.errors import InvalidInput


def encode_cursor(created_at: datetime, row_id: str) -> str:
    """An opaque, URL-safe cursor pointing just after this row."""
    raw = json.dumps([created_at.isoformat(), row_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The (created_at, id) a cursor points after; InvalidInput when it was not ours."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created_at, row_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        moment = datetime.fromisoformat(created_at)
        if not isinstance(row_id, str) or moment.tzinfo is None or not row_id.isprintable():
            raise ValueError
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput("the cursor is not one this server gave out", field="after") from None
    return moment, row_id


def newest_first(
    query: Select[Any], table: type, *, first: int, after: str | None, created_before: datetime | None = None
) -> Select[Any]:
    """Limit `query` to the page after `after`, newest first, by the (created_at, id) index.

    Comparing the key pair instead of skipping an offset keeps page 2,000 as fast as page 1.
    As a row value, `(created_at, id) < (?, ?)`: SQLite seeks the index with it, where the
    spelled-out `created_at < ? OR (created_at = ? AND id < ?)` made it scan from the newest.

    `created_before` is the caller's own exclusive upper bound on created_at (a filter's). Only
    the tighter of it and the cursor is written, since either implies the other: SQLite seeks
    with one upper bound, and given both it took the filter's and walked every match from there
    down to the cursor (a filtered deep page of 100,000 rows: 20 ms, 0.05 ms with one bound).
    """
    created_at, row_id = table.created_at, table.id  # type: ignore[attr-defined]
    cursor = decode_cursor(after) if after else None
    if created_before is not None and (cursor is None or created_before <= cursor[0]):
        query = query.where(created_at < created_before)
    elif cursor is not None:
        moment, last_id = cursor
        query = query.where(tuple_(created_at, row_id) < tuple_(literal(moment, created_at.type), literal(last_id)))
    return query.order_by(table.created_at.desc(), table.id.desc()).limit(first + 1)  # type: ignore[attr-defined]
