"""Stored verifications (one row per restore point or copy verified) and the totals of every run."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from server.model.verification import Verification, VerificationState, VerificationTotals, VerifiedKind
from server.storage.db.tables import VerificationRow, VerificationTotalsRow

_TOTALS = "blobs"


def _record(row: VerificationRow) -> Verification:
    return Verification(
        state=VerificationState(row.state),
        verified_at=row.verified_at,
        problems=tuple(json.loads(row.problems)),
        repaired=row.repaired,
    )


async def get_many(session: AsyncSession, kind: VerifiedKind, ids: Sequence[str]) -> dict[str, Verification]:
    """The stored verifications of these subjects, by id (those never verified are absent)."""
    if not ids:
        return {}
    rows = await session.execute(
        select(VerificationRow).where(
            col(VerificationRow.kind) == kind.value, col(VerificationRow.subject_id).in_(list(set(ids)))
        )
    )
    return {row.subject_id: _record(row) for row in rows.scalars()}


async def known_shas(session: AsyncSession, kind: VerifiedKind) -> dict[str, str | None]:
    """Every subject of this kind verified before, with the SHA-256 its file had when last found OK."""
    rows = await session.execute(
        select(col(VerificationRow.subject_id), col(VerificationRow.sha256)).where(
            col(VerificationRow.kind) == kind.value
        )
    )
    return {subject: sha for subject, sha in rows}


async def not_ok(session: AsyncSession) -> list[tuple[VerifiedKind, str, Verification]]:
    """Every stored verification that is not OK (its subject may be gone since)."""
    rows = await session.execute(
        select(VerificationRow)
        .where(col(VerificationRow.state) != VerificationState.OK.value)
        .order_by(col(VerificationRow.kind), col(VerificationRow.subject_id))
    )
    return [(VerifiedKind(row.kind), row.subject_id, _record(row)) for row in rows.scalars()]


async def save(
    session: AsyncSession, kind: VerifiedKind, subject_id: str, found: Verification, *, sha256: str | None = None
) -> None:
    """Replace the subject's stored verification (`sha256`: a copy's file as found OK)."""
    await session.execute(
        delete(VerificationRow).where(
            col(VerificationRow.kind) == kind.value, col(VerificationRow.subject_id) == subject_id
        )
    )
    session.add(
        VerificationRow(
            kind=kind.value,
            subject_id=subject_id,
            state=found.state.value,
            verified_at=found.verified_at,
            problems=json.dumps(list(found.problems)),
            repaired=found.repaired,
            sha256=sha256,
        )
    )


async def forget(session: AsyncSession, kind: VerifiedKind, subject_ids: Sequence[str]) -> None:
    """Drop the stored verifications of subjects that are gone."""
    if subject_ids:
        await session.execute(
            delete(VerificationRow).where(
                col(VerificationRow.kind) == kind.value, col(VerificationRow.subject_id).in_(list(subject_ids))
            )
        )


async def totals(session: AsyncSession) -> VerificationTotals:
    row = await session.get(VerificationTotalsRow, _TOTALS)
    if row is None:
        return VerificationTotals(last_finished_at=None, bytes_read=0, repaired=0, cursor=None)
    return VerificationTotals(
        last_finished_at=row.last_finished_at, bytes_read=row.bytes_read, repaired=row.repaired, cursor=row.cursor
    )


async def add_run(
    session: AsyncSession, *, finished_at: datetime, bytes_read: int, repaired: int, cursor: str | None
) -> None:
    """Count one finished run into the totals, and keep the rotation's cursor."""
    row = await session.get(VerificationTotalsRow, _TOTALS)
    if row is None:
        session.add(
            VerificationTotalsRow(
                name=_TOTALS, cursor=cursor, bytes_read=bytes_read, repaired=repaired, last_finished_at=finished_at
            )
        )
        return
    row.cursor = cursor
    row.bytes_read += bytes_read
    row.repaired += repaired
    row.last_finished_at = finished_at
    session.add(row)
