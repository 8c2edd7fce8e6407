"""Deleting one restore point for a prune or an expiry, with the log line that says why: the
reasons a restore point is kept instead (in use, pinned meanwhile, its expiry changed) are the
same for both."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from server.model.errors import Busy, Conflict, NotFound, Pinned
from server.model.records import LogLevel, RestorePoint
from server.operations.live import OperationContext
from server.services.restore_points import RestorePointService


async def delete_logged(
    ctx: OperationContext,
    restore_points: RestorePointService,
    point: RestorePoint,
    *,
    deleted: str,
    expired_by: datetime | None = None,
    before_freeing: Callable[[], Awaitable[None]] | None = None,
) -> bool:
    """Delete `point`, logging `deleted` once it is, or why it was kept; True when deleted."""
    named = f"restore point {point.id} ({point.label!r})"
    try:
        await restore_points.delete(point.id, expired_by=expired_by, before_freeing=before_freeing)
    except Busy:
        ctx.log(f"Kept {named} for now: an operation is using it.", LogLevel.WARNING)
        return False
    except Pinned:
        ctx.log(f"Kept {named}: it was pinned meanwhile.", LogLevel.WARNING)
        return False
    except Conflict:
        ctx.log(f"Kept {named}: its expiry was changed meanwhile.")
        return False
    except NotFound:
        ctx.log(f"Restore point {point.id} ({point.label!r}) was already deleted.")
        return False
    ctx.log(deleted)
    return True
