"""GET /health/backups: the backup health for a plain uptime monitor, which reads only the
status code: 200 while OK or WARNING, 503 when CRITICAL, and a small JSON body. The same
access rule as /metrics (a viewer token, or anyone with BACKUPS_METRICS_PUBLIC=1); the
problems' texts only with a viewer token. /health stays the liveness probe."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from server.model.access.tokens import Role
from server.services.schedules.health import HealthStatus
from server.web.monitoring_access import monitoring_reader

if TYPE_CHECKING:  # the backend is built above this layer; only its type is needed here
    from server.backend import Backend


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


async def backup_health(request: Request) -> Response:
    """The backup health: 503 when CRITICAL, else 200."""
    actor, refusal = await monitoring_reader(request)
    if refusal is not None:
        return refusal
    backend: Backend = request.app.state.backend
    found = await backend.services.health.read()
    body: dict[str, object] = {
        "status": found.status.value,
        "lastSuccessAt": _iso(found.last_success_at),
        "nextRunAt": _iso(found.next_run_at),
        "problemCount": len(found.issues),
    }
    if actor.role is not None and actor.role.covers(Role.VIEWER):
        body["problems"] = list(found.problems)  # texts name schedules, locations and errors: not for anyone
    status_code = 503 if found.status is HealthStatus.CRITICAL else 200
    return JSONResponse(body, status_code=status_code, headers={"Cache-Control": "no-store"})
