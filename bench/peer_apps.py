"""The peers of `restorePoints(first: 50)`: the same rows served two other ways.

- `strawberry_app`: a stock Strawberry app as its docs show it (strawberry.asgi.GraphQL on
  Starlette, no extensions, the default JSON encoder), one async SQLAlchemy query per request.
- `starlette_app`: plain Starlette returning the rows as JSON, no GraphQL at all.

Both read the server's own SQLite database (BENCH_DATABASE), newest first, like ours.
Run under stock uvicorn: `uvicorn bench.peer_apps:strawberry_app`.
"""

from __future__ import annotations

import os
from datetime import datetime

import strawberry
from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route
from strawberry.asgi import GraphQL

from server.storage.db.tables import RestorePointRow

_engine = create_async_engine(f"sqlite+aiosqlite:///{os.environ.get('BENCH_DATABASE', ':memory:')}")
_sessions = async_sessionmaker(_engine, expire_on_commit=False)
_COLUMNS = (
    RestorePointRow.id,
    RestorePointRow.label,
    RestorePointRow.created_at,
    RestorePointRow.size_bytes,
    RestorePointRow.item_count,
    RestorePointRow.checksum,
)


async def newest(first: int) -> list[tuple]:
    query = select(*_COLUMNS).order_by(RestorePointRow.created_at.desc(), RestorePointRow.id.desc()).limit(first)
    async with _sessions() as session:
        return list(await session.execute(query))


@strawberry.type
class RestorePoint:
    id: strawberry.ID
    label: str
    created_at: datetime
    size_bytes: int
    item_count: int
    checksum: str


@strawberry.type
class Query:
    @strawberry.field
    async def restore_points(self, first: int = 50) -> list[RestorePoint]:
        return [
            RestorePoint(
                id=strawberry.ID(r[0]), label=r[1], created_at=r[2], size_bytes=r[3], item_count=r[4], checksum=r[5]
            )
            for r in await newest(first)
        ]


async def _ok(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


async def _rows(request: Request) -> JSONResponse:
    first = int(request.query_params.get("first", "50"))
    return JSONResponse(
        [
            {
                "id": r[0],
                "label": r[1],
                "createdAt": r[2].isoformat(),
                "sizeBytes": r[3],
                "itemCount": r[4],
                "checksum": r[5],
            }
            for r in await newest(first)
        ]
    )


strawberry_app = Starlette(routes=[Route("/", _ok), Route("/graphql", GraphQL(strawberry.Schema(query=Query)))])
starlette_app = Starlette(routes=[Route("/", _ok), Route("/restore-points", _rows)])
