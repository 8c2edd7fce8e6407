"""The expiry timer: deletes restore points whose `expiresAt` has passed, as retention does.

It sleeps until the next expiry (read from the database), not until a coarse poll, and is
woken whenever an expiry may have moved (a restore point made with one, an update, a pin).
Each batch of deletions is one PRUNE_RESTORE_POINTS operation requested by `server:expiry`,
whose log names every restore point deleted or kept and why. As retention: a pinned restore
point never expires, one an operation holds (an export, an apply) is kept until that ends, and
an expiry changed or a pin made meanwhile wins (the delete checks both in its own statement).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime

from server.clock import SYSTEM_CLOCK, Clock, utc_now
from server.model.errors import Busy
from server.model.records import OperationKind, OperationStatus, RestorePoint
from server.operations.live import OperationContext
from server.operations.runner import OperationRunner
from server.services.restore_points import RestorePointService
from server.services.schedules.deletion import delete_logged

log = logging.getLogger(__name__)

EXPIRY_REQUESTER = "server:expiry"
# Looked at again at least this often: a clock set forward is noticed within a minute.
LONGEST_SLEEP = 60.0
# A held restore point (or an apply under way) is looked at again after this long.
RETRY_SECONDS = 5.0


class ExpiryTimer:
    """A task that wakes at the next expiry and deletes what has expired."""

    def __init__(
        self,
        *,
        restore_points: RestorePointService,
        runner: OperationRunner,
        clock: Clock = SYSTEM_CLOCK,
        retry_seconds: float = RETRY_SECONDS,
    ) -> None:
        self._restore_points = restore_points
        self._runner = runner
        self._clock = clock
        self._retry = retry_seconds
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        restore_points.on_expiry_change(self.wake)

    def start(self) -> None:
        """Start the timer; its first look deletes what expired while the server was stopped."""
        self._task = asyncio.create_task(self._loop(), name="expiry-timer")

    async def stop(self) -> None:
        """Stop the timer (a deleting operation under way is the runner's to stop)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def wake(self) -> None:
        """Look again now: an expiry may have moved."""
        self._wake.set()

    async def _loop(self) -> None:
        while True:
            self._wake.clear()  # before the look: a change during it wakes the next wait
            try:
                delay = await self._look()
            except Exception:
                log.exception("the expiry timer could not look at the restore points; it tries again")
                delay = self._retry
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    async def _look(self) -> float:
        """Delete what has expired (in an operation, waited for); the seconds until the next look."""
        now = utc_now(self._clock)
        expired = await self._restore_points.expired(now)
        if expired:
            free = [point for point in expired if not self._restore_points.is_held(point.id)]
            if not free:
                return self._retry  # all held: no operation that would only say "kept"
            try:
                op = await self._runner.submit(
                    OperationKind.PRUNE_RESTORE_POINTS,
                    lambda ctx: self._delete_expired(ctx, now),
                    requested_by=EXPIRY_REQUESTER,
                    params={"reason": "expiry"},
                )
            except Busy:
                return self._retry  # an apply holds the system: after it
            live = self._runner.live(op.id)
            if live is not None:
                await live.ended.wait()
                if live.op.status is not OperationStatus.SUCCEEDED:
                    return self._retry  # never a burst of failing operations
            return 0.0  # more may have expired meanwhile (or been past the batch)
        upcoming = await self._restore_points.next_expiry()
        if upcoming is None:
            return LONGEST_SLEEP
        return min(max((upcoming - utc_now(self._clock)).total_seconds(), 0.0), LONGEST_SLEEP)

    async def _delete_expired(self, ctx: OperationContext, now: datetime) -> None:
        ctx.log(f"Restore points whose expiry passed by {now.isoformat(timespec='seconds')} are deleted.")
        doomed = await self._restore_points.expired(now)
        deleted = 0
        for number, point in enumerate(doomed, start=1):
            ctx.checkpoint()
            if await self._delete(ctx, point, now):
                deleted += 1
            ctx.progress(number / len(doomed), "Deleting expired restore points")
        ctx.log(f"Deleted {deleted} of {len(doomed)} expired restore points.")

    async def _delete(self, ctx: OperationContext, point: RestorePoint, now: datetime) -> bool:
        expiry = point.expires_at.isoformat(timespec="seconds") if point.expires_at else "?"
        deleted = f"Deleted restore point {point.id} ({point.label!r}): it expired at {expiry}."
        return await delete_logged(ctx, self._restore_points, point, deleted=deleted, expired_by=now)
