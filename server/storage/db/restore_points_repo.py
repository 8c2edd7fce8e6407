"""Restore point metadata and manifests in the database.

A manifest is stored once, under its id (see server/model/manifests.py), and every restore
point with the same entries refers to it: re-capturing an unchanged source adds one row.
A manifest, and with it the hold on its blobs, goes when its last restore point goes.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, exists, func, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from server.model.records import EntryKind, ManifestEntry, Page, RestorePoint, RestorePointFilter, RestorePointOrigin
from server.storage.db.cursors import encode_cursor, newest_first
from server.storage.db.tables import EntryRow, ManifestRow, RestorePointRow, ScheduleRow

_ENTRY_BATCH = 1000


def restore_point_of_row(row: RestorePointRow) -> RestorePoint:
    """The domain record of a restore point row."""
    return RestorePoint(
        id=row.id,
        label=row.label,
        note=row.note,
        origin=RestorePointOrigin(row.origin),
        created_at=row.created_at,
        created_by=row.created_by,
        size_bytes=row.size_bytes,
        stored_bytes=row.stored_bytes,
        item_count=row.item_count,
        checksum=row.checksum,
        server_version=row.server_version,
        pinned=bool(row.pinned),
        schedule_id=row.schedule_id,
        expires_at=row.expires_at,
        items_only=tuple((s, p) for s, p in json.loads(row.items_only)) if row.items_only else None,
    )


async def manifest_held(session: AsyncSession, manifest_id: str) -> bool:
    """Whether this manifest is stored (and so are its blobs, which it keeps from collection)."""
    return await session.scalar(select(exists().where(col(ManifestRow.id) == manifest_id))) or False


async def add_restore_point(
    session: AsyncSession, point: RestorePoint, entries: Sequence[ManifestEntry], *, manifest_id: str
) -> RestorePoint | None:
    """Insert the point, and its manifest unless that is held already. If a restore point has
    its id already (two imports of one copy), insert nothing and return that one instead.

    Checked in the write transaction: the caller serialises writers of restore points (SQLite
    serialises every write), so nothing can come between the check and the insert."""
    if (taken := await get_restore_point(session, point.id)) is not None:
        return taken
    new = not await manifest_held(session, manifest_id)
    if new:
        session.add(ManifestRow(id=manifest_id))
        await session.flush()
        await _insert_entries(session, manifest_id, entries)
    fields = {f: getattr(point, f) for f in RestorePointRow.model_fields if f != "manifest_id"}
    if point.items_only is not None:
        fields["items_only"] = json.dumps([list(item) for item in point.items_only])
    if point.schedule_id is not None and await session.get(ScheduleRow, point.schedule_id) is None:
        fields["schedule_id"] = None  # its schedule was deleted while it was being made
    session.add(RestorePointRow(**fields, manifest_id=manifest_id))
    await session.flush()
    return None


async def _insert_entries(session: AsyncSession, manifest_id: str, entries: Sequence[ManifestEntry]) -> None:
    rows = [
        {
            "manifest_id": manifest_id,
            "position": position,
            "source": entry.source,
            "path": entry.path,
            "kind": entry.kind.value,
            "size": entry.size,
            "sha256": entry.sha256,
            "mode": entry.mode,
            "mtime": entry.mtime,
            "parent": entry.path.rpartition("/")[0],
        }
        for position, entry in enumerate(entries)
    ]
    # Core inserts on the session's connection: the ORM's bulk path costs several times more
    # per row, and a tree of tens of thousands of files makes as many rows.
    connection = await session.connection()
    table = EntryRow.__table__  # type: ignore[attr-defined]
    for start in range(0, len(rows), _ENTRY_BATCH):
        await connection.execute(insert(table), rows[start : start + _ENTRY_BATCH])


async def get_restore_point(session: AsyncSession, point_id: str) -> RestorePoint | None:
    row = await session.get(RestorePointRow, point_id)
    return restore_point_of_row(row) if row else None


async def update_restore_point(session: AsyncSession, point_id: str, changes: dict[str, object]) -> RestorePoint | None:
    """Apply these column changes (label, note, pinned); None when there is no such point."""
    row = await session.get(RestorePointRow, point_id)
    if row is None:
        return None
    for name, value in changes.items():
        setattr(row, name, value)
    session.add(row)
    await session.flush()
    return restore_point_of_row(row)


async def get_restore_points(session: AsyncSession, ids: Sequence[str]) -> dict[str, RestorePoint]:
    rows = await session.scalars(select(RestorePointRow).where(col(RestorePointRow.id).in_(ids)))
    return {row.id: restore_point_of_row(row) for row in rows}


async def find_by_checksum(session: AsyncSession, checksum: str) -> list[RestorePoint]:
    rows = await session.scalars(select(RestorePointRow).where(col(RestorePointRow.checksum) == checksum))
    return [restore_point_of_row(row) for row in rows]


_POINT_COLUMNS = tuple(getattr(RestorePointRow, name) for name in RestorePointRow.model_fields)


def _narrowed(query: Select[Any], narrow: RestorePointFilter | None, *, upper_bound: bool = True) -> Select[Any]:
    """`query` with the filter's conditions; without `upper_bound` created_before is left to the
    caller (a page writes it or its cursor, whichever is tighter: see `newest_first`)."""
    if narrow is None or narrow.empty:
        return query
    table = RestorePointRow
    if narrow.origins is not None:
        query = query.where(col(table.origin).in_([origin.value for origin in narrow.origins]))
    if narrow.schedule_id is not None:
        query = query.where(col(table.schedule_id) == narrow.schedule_id)
    if narrow.pinned is not None:
        query = query.where(col(table.pinned) == narrow.pinned)
    if narrow.created_after is not None:
        query = query.where(col(table.created_at) > narrow.created_after)
    if narrow.created_before is not None and upper_bound:
        query = query.where(col(table.created_at) < narrow.created_before)
    if narrow.created_by is not None:
        query = query.where(col(table.created_by) == narrow.created_by)
    if narrow.ids is not None:
        query = query.where(col(table.id).in_(sorted(narrow.ids)))
    if narrow.search:
        escaped = narrow.search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
        query = query.where(
            or_(col(table.label).ilike(pattern, escape="\\"), col(table.note).ilike(pattern, escape="\\"))
        )
    return query


async def page_restore_points(
    session: AsyncSession, *, first: int, after: str | None, narrow: RestorePointFilter | None = None
) -> Page[RestorePoint]:
    """Newest first; the keyset (created_at, id) keeps deep pages as fast as the first.

    Plain column rows, not ORM objects (a page is read-only), and no count: counting every
    row costs more than the page itself, so `count_restore_points` runs only when asked.
    """
    table = RestorePointRow
    query = newest_first(
        _narrowed(select(*_POINT_COLUMNS), narrow, upper_bound=False),
        table,
        first=first,
        after=after,
        created_before=narrow.created_before if narrow is not None else None,
    )
    rows = list(await session.execute(query))
    items = [restore_point_of_row(row) for row in rows[:first]]
    cursors = [encode_cursor(item.created_at, item.id) for item in items]
    return Page(items=items, cursors=cursors, has_next_page=len(rows) > first, total_count=None)


async def count_restore_points(session: AsyncSession, narrow: RestorePointFilter | None = None) -> int:
    return await session.scalar(_narrowed(select(func.count()).select_from(RestorePointRow), narrow)) or 0


async def total_size_bytes(session: AsyncSession) -> int:
    """The restore points' sizes added up: what they hold, before content shared between them is stored once."""
    return await session.scalar(select(func.coalesce(func.sum(col(RestorePointRow.size_bytes)), 0))) or 0


_ENTRY_COLUMNS = (
    col(EntryRow.source),
    col(EntryRow.path),
    col(EntryRow.kind),
    col(EntryRow.size),
    col(EntryRow.sha256),
    col(EntryRow.mode),
    col(EntryRow.mtime),
)


def _entries_query(point_id: str) -> Any:
    manifest = select(col(RestorePointRow.manifest_id)).where(col(RestorePointRow.id) == point_id).scalar_subquery()
    return select(*_ENTRY_COLUMNS).where(col(EntryRow.manifest_id) == manifest).order_by(col(EntryRow.position))


def _entries_of(rows: Iterable[Sequence[Any]]) -> list[ManifestEntry]:
    # Plain column rows, not ORM objects: a manifest can hold tens of thousands of entries.
    return [
        ManifestEntry(source=source, path=path, kind=EntryKind(kind), size=size, sha256=sha256, mode=mode, mtime=mtime)
        for source, path, kind, size, sha256, mode, mtime in rows
    ]


async def list_entries(session: AsyncSession, point_id: str) -> list[ManifestEntry]:
    return _entries_of(await session.execute(_entries_query(point_id)))


async def list_entries_in_parts(
    session: AsyncSession, point_id: str, part: int, between: Callable[[], Awaitable[None]]
) -> list[ManifestEntry]:
    """list_entries, fetched `part` rows at a time with `between()` awaited after each (which
    may wait, or raise to stop): the event loop is never held for a whole manifest."""
    found: list[ManifestEntry] = []
    result = await session.stream(_entries_query(point_id))
    try:
        async for rows in result.partitions(part):
            found.extend(_entries_of(rows))
            await between()
    finally:
        await result.close()
    return found


def _expirable(now: datetime) -> list[Any]:
    table = RestorePointRow
    return [col(table.expires_at).is_not(None), col(table.expires_at) <= now, col(table.pinned).is_(False)]


async def next_expiry(session: AsyncSession) -> datetime | None:
    """When the next unpinned restore point expires (possibly already past); None: none will."""
    table = RestorePointRow
    return await session.scalar(
        select(func.min(col(table.expires_at))).where(col(table.expires_at).is_not(None), col(table.pinned).is_(False))
    )


async def expired_restore_points(session: AsyncSession, now: datetime, *, limit: int) -> list[RestorePoint]:
    """Unpinned restore points whose expiry is at or before `now`, the earliest first."""
    query: Select[Any] = (
        select(*_POINT_COLUMNS).where(*_expirable(now)).order_by(col(RestorePointRow.expires_at)).limit(limit)
    )
    rows = list(await session.execute(query))
    return [restore_point_of_row(row) for row in rows]


async def delete_restore_point(
    session: AsyncSession, point_id: str, *, expired_by: datetime | None = None
) -> set[str] | None:
    """Delete the point, and its manifest if no other point shares it; returns the digests
    that manifest referenced (none while another point still holds it).

    `expired_by`: delete it only if it is unpinned and expired by then, checked in the DELETE
    itself (so a pin or a later expiry committed meanwhile wins); None when it was not.
    """
    manifest_id = await session.scalar(
        select(col(RestorePointRow.manifest_id)).where(col(RestorePointRow.id) == point_id)
    )
    condition = [col(RestorePointRow.id) == point_id]
    if expired_by is not None:
        condition += _expirable(expired_by)
    result = await session.execute(delete(RestorePointRow).where(*condition))
    if expired_by is not None and getattr(result, "rowcount", 0) != 1:
        return None
    if manifest_id is None or await _manifest_used(session, manifest_id):
        return set()
    return await _delete_manifest(session, manifest_id)


async def _manifest_used(session: AsyncSession, manifest_id: str) -> bool:
    used = exists().where(col(RestorePointRow.manifest_id) == manifest_id)
    return await session.scalar(select(used)) or False


async def _delete_manifest(session: AsyncSession, manifest_id: str) -> set[str]:
    digests = set(
        await session.scalars(
            select(col(EntryRow.sha256))
            .where(col(EntryRow.manifest_id) == manifest_id, col(EntryRow.sha256).is_not(None))
            .distinct()
        )
    )
    # Explicit deletes, not ON DELETE CASCADE: SQLite honours that only when enabled.
    await session.execute(delete(EntryRow).where(col(EntryRow.manifest_id) == manifest_id))
    await session.execute(delete(ManifestRow).where(col(ManifestRow.id) == manifest_id))
    return digests  # type: ignore[return-value]


async def delete_unused_manifests(session: AsyncSession) -> set[str]:
    """Delete manifests no restore point refers to; returns the digests they referenced."""
    unused = await session.scalars(
        select(col(ManifestRow.id)).where(~exists().where(col(RestorePointRow.manifest_id) == col(ManifestRow.id)))
    )
    digests: set[str] = set()
    for manifest_id in list(unused):
        digests |= await _delete_manifest(session, manifest_id)
    return digests


async def referenced_digests(session: AsyncSession, digests: Iterable[str]) -> set[str]:
    """Which of these digests some restore point still references."""
    wanted = list(set(digests))
    found: set[str] = set()
    for start in range(0, len(wanted), _ENTRY_BATCH):
        chunk = wanted[start : start + _ENTRY_BATCH]
        found.update(
            await session.scalars(select(col(EntryRow.sha256)).where(col(EntryRow.sha256).in_(chunk)).distinct())
        )
    return found


async def all_referenced_digests(session: AsyncSession) -> set[str]:
    result = await session.scalars(select(col(EntryRow.sha256)).where(col(EntryRow.sha256).is_not(None)).distinct())
    return set(result)  # type: ignore[arg-type]
