"""The built-in settings store's modules, each a JSON document."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from server.model.records import Module
from server.storage.db.tables import ModuleRow


def canonical_json(value: Any) -> str:
    """Stable JSON text: the same document always gives the same bytes and hash."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _to_domain(row: ModuleRow) -> Module:
    return Module(name=row.name, settings=json.loads(row.settings), updated_at=row.updated_at)


async def list_modules(session: AsyncSession) -> list[Module]:
    rows = await session.scalars(select(ModuleRow).order_by(col(ModuleRow.name)))
    return [_to_domain(row) for row in rows]


async def list_module_texts(session: AsyncSession) -> list[tuple[str, str, datetime]]:
    """Every module as (name, canonical JSON text, updated_at), by name, not parsed."""
    rows = await session.execute(
        select(col(ModuleRow.name), col(ModuleRow.settings), col(ModuleRow.updated_at)).order_by(col(ModuleRow.name))
    )
    return [(name, text, updated_at) for name, text, updated_at in rows]


async def get_module(session: AsyncSession, name: str) -> Module | None:
    row = await session.get(ModuleRow, name)
    return _to_domain(row) if row else None


async def save_module(session: AsyncSession, name: str, settings: Mapping[str, Any]) -> Module:
    row = await session.get(ModuleRow, name)
    now = datetime.now(UTC)
    if row is None:
        row = ModuleRow(name=name, settings=canonical_json(settings), updated_at=now)
        session.add(row)
    else:
        row.settings = canonical_json(settings)
        row.updated_at = now
    await session.flush()
    return _to_domain(row)


async def replace_all_modules(session: AsyncSession, documents: Mapping[str, Any]) -> None:
    """Make the store hold exactly these modules (used when applying a restore point)."""
    await replace_all_module_texts(session, {name: canonical_json(doc) for name, doc in documents.items()})


async def replace_all_module_texts(session: AsyncSession, texts: Mapping[str, str]) -> None:
    """Make the store hold exactly these modules, given as their canonical JSON text."""
    await session.execute(delete(ModuleRow))
    now = datetime.now(UTC)
    session.add_all(ModuleRow(name=name, settings=text, updated_at=now) for name, text in texts.items())
    await session.flush()


async def is_empty(session: AsyncSession) -> bool:
    return (await session.scalar(select(col(ModuleRow.name)).limit(1))) is None
