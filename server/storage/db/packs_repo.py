"""The pack index in the database: which packs exist, and where each packed blob is.

Only the keeper's lock holder writes here (server/services/blob_keeper.py), so a row is
never inserted and deleted at once; rows are deleted before they are inserted again, which
every backend runs alike (no dialect's ON CONFLICT needed).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from server.storage.blobs.packs import Location
from server.storage.db.tables import PackedBlobRow, PackRow

_BATCH = 1000


async def load(session: AsyncSession) -> tuple[dict[str, int], list[tuple[str, str, int, int]]]:
    """(pack id -> size, [(digest, pack id, start, size)]) for the whole index."""
    packs = {row[0]: row[1] for row in await session.execute(select(col(PackRow.id), col(PackRow.size_bytes)))}
    rows = await session.execute(
        select(
            col(PackedBlobRow.sha256),
            col(PackedBlobRow.pack_id),
            col(PackedBlobRow.start_byte),
            col(PackedBlobRow.size_bytes),
        )
    )
    return packs, [(digest, pack, start, size) for digest, pack, start, size in rows]


async def add(session: AsyncSession, located: Mapping[str, Location], pack_sizes: Mapping[str, int]) -> None:
    """Record these packed blobs, and their packs unless recorded already."""
    if not located:
        return
    packs = set(pack_sizes)
    known = set(await session.scalars(select(col(PackRow.id)).where(col(PackRow.id).in_(packs))))
    connection = await session.connection()
    missing = [{"id": pack, "size_bytes": pack_sizes[pack]} for pack in packs - known]
    if missing:
        await connection.execute(insert(PackRow.__table__), missing)  # type: ignore[attr-defined]
    digests = list(located)
    await _delete_rows(session, digests)
    rows = [
        {"sha256": digest, "pack_id": where.pack, "start_byte": where.start, "size_bytes": where.size}
        for digest, where in located.items()
    ]
    table = PackedBlobRow.__table__  # type: ignore[attr-defined]
    for start in range(0, len(rows), _BATCH):
        await connection.execute(insert(table), rows[start : start + _BATCH])


async def _delete_rows(session: AsyncSession, digests: list[str]) -> None:
    for start in range(0, len(digests), _BATCH):
        chunk = digests[start : start + _BATCH]
        await session.execute(delete(PackedBlobRow).where(col(PackedBlobRow.sha256).in_(chunk)))


async def remove_blobs(session: AsyncSession, digests: Iterable[str]) -> None:
    """Forget these packed blobs (collected)."""
    await _delete_rows(session, list(set(digests)))


async def remove_packs(session: AsyncSession, packs: Iterable[str]) -> None:
    """Forget these packs, and any row still naming them."""
    packs = list(packs)
    for start in range(0, len(packs), _BATCH):
        chunk = packs[start : start + _BATCH]
        await session.execute(delete(PackedBlobRow).where(col(PackedBlobRow.pack_id).in_(chunk)))
        await session.execute(delete(PackRow).where(col(PackRow.id).in_(chunk)))


async def move(session: AsyncSession, old: Sequence[str], new: str, size: int, moves: Mapping[str, Location]) -> None:
    """Rewritten packs: their blobs' rows point at the new one, in the caller's transaction."""
    session.add(PackRow(id=new, size_bytes=size))
    await session.flush()
    rows = [{"digest": digest, "new_start": where.start} for digest, where in moves.items()]
    statement = (
        update(PackedBlobRow.__table__)  # type: ignore[attr-defined]
        .where(PackedBlobRow.__table__.c.sha256 == bindparam("digest"))  # type: ignore[attr-defined]
        .values(pack_id=new, start_byte=bindparam("new_start"))
    )
    connection = await session.connection()
    for start in range(0, len(rows), _BATCH):
        await connection.execute(statement, rows[start : start + _BATCH])
    await remove_packs(session, old)
