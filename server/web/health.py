"""GET /health: "ok" for anyone (load balancers, the test harness); details only with a token."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from server.api.http.auth import bearer_token, identify
from server.version import SERVER_VERSION

if TYPE_CHECKING:  # the backend imports this module's routes
    from server.backend import Backend


async def health(request: Request) -> Response:
    """The server is up; with a valid token, also its version and what is running."""
    backend: Backend = request.app.state.backend
    actor = await identify(
        backend.services.access,
        bearer_token(request.headers.get("authorization")),
        auth_enabled=backend.config.auth_enabled,
    )
    if actor.is_anonymous:
        return JSONResponse({"status": "ok"})
    return JSONResponse(
        {
            "status": "ok",
            "version": SERVER_VERSION,
            "operations": backend.runner.stats(),
            "tasks": len(asyncio.all_tasks()),
        }
    )
