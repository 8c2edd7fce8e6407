"""Who may read the monitoring endpoints (/metrics, /health/backups): a viewer token, or
anyone when BACKUPS_METRICS_PUBLIC=1 (for a scraper or an uptime monitor that sends no header)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from server.api.context import Actor
from server.api.http.auth import bearer_token, identify
from server.model.access.tokens import Role

if TYPE_CHECKING:  # the backend is built above this layer; only its type is needed here
    from server.backend import Backend


async def monitoring_reader(request: Request) -> tuple[Actor, Response | None]:
    """Who asks, and the 401 to answer when they may not read monitoring data (else None)."""
    backend: Backend = request.app.state.backend
    actor = await identify(
        backend.services.access,
        bearer_token(request.headers.get("authorization")),
        auth_enabled=backend.config.auth_enabled,
    )
    if backend.config.metrics_public or (actor.role is not None and actor.role.covers(Role.VIEWER)):
        return actor, None
    return actor, PlainTextResponse(
        "a viewer token is needed: send Authorization: Bearer <token>",
        status_code=401,
        headers={"WWW-Authenticate": "Bearer"},
    )
