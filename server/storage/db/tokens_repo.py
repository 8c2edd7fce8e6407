"""API tokens in the database: records by id, by active name, and by the hash of the secret."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlmodel import col

from server.model.access.tokens import ApiToken, Role
from server.storage.db.tables import ApiTokenRow


def _to_domain(row: ApiTokenRow) -> ApiToken:
    return ApiToken(
        id=row.id,
        name=row.name,
        role=Role(row.role),
        hint=row.hint,
        created_at=row.created_at,
        created_by=row.created_by,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
    )


async def insert(session: AsyncSession, token: ApiToken, token_hash: str) -> None:
    session.add(
        ApiTokenRow(
            id=token.id,
            name=token.name,
            role=token.role.value,
            token_hash=token_hash,
            hint=token.hint,
            created_at=token.created_at,
            created_by=token.created_by,
            expires_at=token.expires_at,
            revoked_at=token.revoked_at,
        )
    )
    await session.flush()


async def by_id(session: AsyncSession, token_id: str) -> ApiToken | None:
    row = await session.get(ApiTokenRow, token_id)
    return _to_domain(row) if row else None


_COLUMNS = tuple(getattr(ApiTokenRow, name) for name in ApiTokenRow.model_fields)


async def by_hash(session: AsyncSession | AsyncConnection, token_hash: str) -> tuple[ApiToken, str] | None:
    """The token whose secret has this hash, with the stored hash."""
    # Plain columns, not an ORM object: this runs on every request, and is only read.
    query = select(*_COLUMNS).where(col(ApiTokenRow.token_hash) == token_hash)
    row = (await session.execute(query)).first()
    return (_to_domain(row), row.token_hash) if row else None  # type: ignore[arg-type]


async def active_by_name(session: AsyncSession, name: str) -> ApiToken | None:
    active = col(ApiTokenRow.revoked_at).is_(None)
    row = await session.scalar(select(ApiTokenRow).where(col(ApiTokenRow.name) == name, active))
    return _to_domain(row) if row else None


async def list_all(session: AsyncSession) -> list[ApiToken]:
    rows = await session.scalars(select(ApiTokenRow).order_by(col(ApiTokenRow.created_at), col(ApiTokenRow.id)))
    return [_to_domain(row) for row in rows]


async def count(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(ApiTokenRow)) or 0)


async def set_revoked(session: AsyncSession, token_id: str, at: datetime) -> ApiToken:
    row = await session.get(ApiTokenRow, token_id)
    assert row is not None
    row.revoked_at = at
    await session.flush()
    return _to_domain(row)
