"""Restore point metadata and manifests in the database."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.domain.models import EntryKind, ManifestEntry, Page, RestorePoint, RestorePointOrigin
from server.storage.cursors import encode_cursor, newest_first
from server.storage.tables import EntryRow, RestorePointRow

_ENTRY_BATCH = 1000


def _to_domain(row: RestorePointRow) -> RestorePoint:
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
    )


async def add_restore_point(
    session: AsyncSession, point: RestorePoint, entries: Sequence[ManifestEntry]
) -> None:
    session.add(RestorePointRow(**{f: getattr(point, f) for f in RestorePointRow.model_fields}))
    await session.flush()
    rows = [
        {
            "restore_point_id": point.id,
            "position": position,
            "source": entry.source,
            "path": entry.path,
            "kind": entry.kind.value,
            "size": entry.size,
            "sha256": entry.sha256,
            "mode": entry.mode,
            "mtime": entry.mtime,
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
    return _to_domain(row) if row else None


async def get_restore_points(session: AsyncSession, ids: Sequence[str]) -> dict[str, RestorePoint]:
    rows = await session.scalars(select(RestorePointRow).where(RestorePointRow.id.in_(ids)))
    return {row.id: _to_domain(row) for row in rows}


async def find_by_checksum(session: AsyncSession, checksum: str) -> list[RestorePoint]:
    rows = await session.scalars(
        select(RestorePointRow).where(RestorePointRow.checksum == checksum)
    )
    return [_to_domain(row) for row in rows]


_POINT_COLUMNS = tuple(getattr(RestorePointRow, name) for name in RestorePointRow.model_fields)


async def page_restore_points(
    session: AsyncSession, *, first: int, after: str | None
) -> Page[RestorePoint]:
    """Newest first; the keyset (created_at, id) keeps deep pages as fast as the first.

    Plain column rows, not ORM objects (a page is read-only), and no count: counting every
    row costs more than the page itself, so `count_restore_points` runs only when asked.
    """
    table = RestorePointRow
    query = newest_first(select(*_POINT_COLUMNS), table, first=first, after=after)
    rows = list(await session.execute(query))
    items = [_to_domain(row) for row in rows[:first]]  # type: ignore[arg-type]
    cursors = [encode_cursor(item.created_at, item.id) for item in items]
    return Page(items=items, cursors=cursors, has_next_page=len(rows) > first, total_count=None)


async def count_restore_points(session: AsyncSession) -> int:
    return await session.scalar(select(func.count()).select_from(RestorePointRow)) or 0


async def list_entries(session: AsyncSession, point_id: str) -> list[ManifestEntry]:
    rows = await session.execute(
        select(EntryRow).where(EntryRow.restore_point_id == point_id).order_by(EntryRow.position)
    )
    return [
        ManifestEntry(
            source=row.source,
            path=row.path,
            kind=EntryKind(row.kind),
            size=row.size,
            sha256=row.sha256,
            mode=row.mode,
            mtime=row.mtime,
        )
        for row in rows.scalars()
    ]


async def delete_restore_point(session: AsyncSession, point_id: str) -> set[str]:
    """Delete the point and its entries; returns the digests it referenced."""
    digests = set(
        await session.scalars(
            select(EntryRow.sha256).where(
                EntryRow.restore_point_id == point_id, EntryRow.sha256.is_not(None)
            )
        )
    )
    # Explicit, not relying on ON DELETE CASCADE, which SQLite only honours when enabled.
    await session.execute(delete(EntryRow).where(EntryRow.restore_point_id == point_id))
    await session.execute(delete(RestorePointRow).where(RestorePointRow.id == point_id))
    return digests  # type: ignore[return-value]


async def referenced_digests(session: AsyncSession, digests: Iterable[str]) -> set[str]:
    """Which of these digests some restore point still references."""
    wanted = list(set(digests))
    found: set[str] = set()
    for start in range(0, len(wanted), _ENTRY_BATCH):
        chunk = wanted[start : start + _ENTRY_BATCH]
        found.update(
            await session.scalars(select(EntryRow.sha256).where(EntryRow.sha256.in_(chunk)).distinct())
        )
    return found


async def all_referenced_digests(session: AsyncSession) -> set[str]:
    result = await session.scalars(
        select(EntryRow.sha256).where(EntryRow.sha256.is_not(None)).distinct()
    )
    return set(result)  # type: ignore[arg-type]
