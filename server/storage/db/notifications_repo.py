"""Notification targets' last deliveries (lastSentAt, lastError), by target name."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.model.notifications import TargetState
from server.storage.db.tables import NotificationTargetRow


async def load_all(session: AsyncSession) -> dict[str, TargetState]:
    """Every target's last delivery that was stored, by name."""
    rows = await session.scalars(select(NotificationTargetRow))
    return {row.name: TargetState(last_sent_at=row.last_sent_at, last_error=row.last_error) for row in rows}


async def save(session: AsyncSession, name: str, state: TargetState) -> None:
    """Store a target's last delivery (replacing what was stored)."""
    await session.merge(NotificationTargetRow(name=name, last_sent_at=state.last_sent_at, last_error=state.last_error))
