"""A restore point's entries read one folder or one path at a time, for browsing, downloading
and putting back single items (never the whole manifest: a tree holds tens of thousands).

Pages are keyed by the last (source, path) seen, through the children index
(manifest_id, source, parent, path): page 500 of a folder of 24,000 costs what page 1 does.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import func, insert, literal, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from server.model.errors import InvalidInput
from server.model.records import EntryKind, ManifestEntry
from server.storage.db.tables import EntryRow, RestorePointRow, TableRowsRow

_COLUMNS = (
    col(EntryRow.source),
    col(EntryRow.path),
    col(EntryRow.kind),
    col(EntryRow.size),
    col(EntryRow.sha256),
    col(EntryRow.mode),
    col(EntryRow.mtime),
)


# An item cursor is "item", the source and the path joined by NUL (which no source name or path
# holds), base64url: another listing's cursor is refused rather than read as a position in this
# one. One made on every item of a page, so it is kept cheaper than JSON; the JSON form
# (["item", source, path]) that earlier versions gave out is still read.
_CURSOR_TAG = "item"


def encode_item_cursor(source: str, path: str) -> str:
    """An opaque cursor pointing just after this entry of a listing."""
    return base64.urlsafe_b64encode(f"{_CURSOR_TAG}\0{source}\0{path}".encode()).decode().rstrip("=")


def decode_item_cursor(cursor: str) -> tuple[str, str]:
    try:
        raw = base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode()).decode()
        parts = json.loads(raw) if raw.startswith("[") else raw.split("\0")
        tag, source, path = parts
        if tag != _CURSOR_TAG or not isinstance(source, str) or not isinstance(path, str):
            raise ValueError
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput("the cursor is not one this server gave out", field="after") from None
    return source, path


def _manifest_of(point_id: str) -> Any:
    return select(col(RestorePointRow.manifest_id)).where(col(RestorePointRow.id) == point_id).scalar_subquery()


def _entry(row: Sequence[Any]) -> ManifestEntry:
    source, path, kind, size, sha256, mode, mtime = row
    return ManifestEntry(
        source=source, path=path, kind=EntryKind(kind), size=size, sha256=sha256, mode=mode, mtime=mtime
    )


async def children_page(
    session: AsyncSession, point_id: str, *, source: str | None, folder: str, first: int, after: str | None
) -> list[ManifestEntry]:
    """Up to first + 1 entries directly inside `folder` ("" for the top level) of `source`
    (None: every source's top level), by (source, path), after the cursor `after`."""
    query = select(*_COLUMNS).where(col(EntryRow.manifest_id) == _manifest_of(point_id), col(EntryRow.parent) == folder)
    if source is not None:
        query = query.where(col(EntryRow.source) == source)
    if after:
        last_source, last_path = decode_item_cursor(after)
        if source is not None:
            # The source is fixed: seek on the path alone. As a row value, (source, path) > (?, ?)
            # made SQLite range over `source >` and sort, reading the whole folder for each page.
            query = query.where(col(EntryRow.source) == last_source, col(EntryRow.path) > last_path)
        else:
            query = query.where(
                tuple_(col(EntryRow.source), col(EntryRow.path)) > tuple_(literal(last_source), literal(last_path))
            )
    query = query.order_by(col(EntryRow.source), col(EntryRow.path)).limit(first + 1)
    return [_entry(row) for row in await session.execute(query)]


async def count_children(session: AsyncSession, point_id: str, *, source: str | None, folder: str) -> int:
    """How many entries are directly inside `folder` of `source` (None: every source's top level)."""
    query = select(func.count()).where(
        col(EntryRow.manifest_id) == _manifest_of(point_id), col(EntryRow.parent) == folder
    )
    if source is not None:
        query = query.where(col(EntryRow.source) == source)
    return int((await session.execute(query)).scalar_one())


async def holds_source(session: AsyncSession, point_id: str, source: str) -> bool:
    """Whether the restore point holds any entry of this source."""
    query = select(literal(1)).where(
        col(EntryRow.manifest_id) == _manifest_of(point_id), col(EntryRow.source) == source
    )
    return (await session.execute(query.limit(1))).first() is not None


async def sources_of(session: AsyncSession, point_id: str) -> list[str]:
    """The names of the sources a restore point holds entries of, sorted."""
    query = (
        select(col(EntryRow.source))
        .where(col(EntryRow.manifest_id) == _manifest_of(point_id))
        .distinct()
        .order_by(col(EntryRow.source))
    )
    return list((await session.execute(query)).scalars())


async def entry_at(session: AsyncSession, point_id: str, source: str, path: str) -> ManifestEntry | None:
    """The entry at exactly this path of this source; None when the restore point has none."""
    parent = path.rpartition("/")[0]
    query = select(*_COLUMNS).where(
        col(EntryRow.manifest_id) == _manifest_of(point_id),
        col(EntryRow.source) == source,
        col(EntryRow.parent) == parent,
        col(EntryRow.path) == path,
    )
    row = (await session.execute(query.limit(1))).first()
    return _entry(row) if row else None


async def entries_under(session: AsyncSession, point_id: str, source: str, folder: str) -> list[ManifestEntry]:
    """Every entry anywhere inside `folder` ("" for the whole source), the folder itself not
    included, in the manifest's order (a folder before what it holds)."""
    query = select(*_COLUMNS).where(col(EntryRow.manifest_id) == _manifest_of(point_id), col(EntryRow.source) == source)
    if folder:
        pattern = _escape_like(folder) + "/%"
        query = query.where(col(EntryRow.path).like(pattern, escape="\\"))
    rows = await session.execute(query.order_by(col(EntryRow.position)))
    return [_entry(row) for row in rows]


async def entries_of_items(
    session: AsyncSession, point_id: str, items: Sequence[tuple[str, str]]
) -> list[ManifestEntry]:
    """The entries at these (source, path)s, everything under those that are folders, and the
    folders above them: what an item apply needs, read by index, not the whole manifest."""
    found: dict[tuple[str, str], ManifestEntry] = {}
    for source, path in items:
        parts = path.split("/")
        for depth in range(1, len(parts) + 1):
            rel = "/".join(parts[:depth])
            if (source, rel) not in found and (entry := await entry_at(session, point_id, source, rel)) is not None:
                found[(source, rel)] = entry
        top = found.get((source, path))
        if top is not None and top.kind is EntryKind.DIRECTORY:
            for entry in await entries_under(session, point_id, source, path):
                found.setdefault((source, entry.path), entry)
    return sorted(found.values(), key=lambda e: (e.source, e.path.split("/")))


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def row_counts(session: AsyncSession, digests: Sequence[str]) -> dict[str, int]:
    """The row count of each table file (by its SHA-256) that a capture counted."""
    if not digests:
        return {}
    rows = await session.execute(
        select(col(TableRowsRow.sha256), col(TableRowsRow.row_count)).where(col(TableRowsRow.sha256).in_(digests))
    )
    return {sha256: count for sha256, count in rows}


async def record_row_counts(session: AsyncSession, counts: Mapping[str, int]) -> None:
    """Remember the row counts of table files just stored (a count already known stays)."""
    known = await row_counts(session, list(counts))
    new = [{"sha256": digest, "row_count": count} for digest, count in counts.items() if digest not in known]
    if new:
        await session.execute(insert(TableRowsRow), new)
