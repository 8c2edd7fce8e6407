"""Notifications: what happened, told to the targets that want it. Operations' ends come from
the runner's listener (OperationRunner.on_end, registered by the composition root), health
changes from HealthService.follow, an overdue backup from a timer of its own. Nothing here is
on an operation's path: the listener only queues, each target sends from its own task.

The targets' lastSentAt and lastError are stored in the database (notifications_repo), so
they outlive a restart."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from server.clock import Clock, utc_now
from server.config.notifications_file import NotificationSpec
from server.model.diffs.config_diff import Change
from server.model.errors import NotFound
from server.model.notifications import Notice, NotificationEvent, NotificationTarget, TargetState
from server.model.records import Operation, OperationKind, OperationStatus, RestorePointFilter
from server.services.diffs import DiffService
from server.services.notifications import messages
from server.services.notifications.delivery import AppriseSend, DeliveryTimes, TargetWorker
from server.services.restore_points import RestorePointService
from server.services.schedules.health import BackupHealth, HealthService
from server.services.verification.service import VerificationService
from server.storage.db import notifications_repo as repo
from server.storage.db.database import Database

log = logging.getLogger(__name__)


class NotificationService:
    """The declared targets, each with its worker; events in, messages out."""

    def __init__(
        self,
        *,
        targets: Sequence[NotificationSpec],
        sender: messages.Sender,
        times: DeliveryTimes,
        clock: Clock,
        restore_points: RestorePointService,
        diffs: DiffService,
        health: HealthService,
        db: Database,
        overdue_hours: float | None = None,
        poll_seconds: float = 5.0,
        verification: VerificationService | None = None,
    ) -> None:
        self._sender = sender
        self._verification = verification
        self._clock = clock
        self._restore_points = restore_points
        self._diffs = diffs
        self._health = health
        self._db = db
        self._overdue_hours = overdue_hours
        self._poll = poll_seconds
        # Threads of their own: a target that never answers holds one until Apprise's own
        # timeout, never a thread the rest of the server needs.
        self._pool = ThreadPoolExecutor(max_workers=min(8, 2 + 2 * len(targets)), thread_name_prefix="notify")
        now: Callable[[], datetime] = lambda: utc_now(clock)  # noqa: E731
        self._workers = {
            spec.name: TargetWorker(
                spec,
                AppriseSend(spec, self._pool, times.timeout),
                times=times,
                sender=sender,
                now=now,
                save=self._save,
            )
            for spec in targets
        }
        self._tasks: set[asyncio.Task[None]] = set()
        self._watching: list[asyncio.Task[None]] = []

    # -- what the API reads and does ----------------------------------------------------------

    def targets(self) -> list[NotificationTarget]:
        """Every declared target, in the config file's order, with its last delivery."""
        return [
            NotificationTarget(w.spec.name, w.spec.masked_url, w.spec.events, w.state) for w in self._workers.values()
        ]

    async def test(self, name: str) -> str | None:
        """Send a test message to the target now, once: None when delivered, else why not."""
        worker = self._workers.get(name)
        if worker is None:
            raise NotFound(f"no notification target named {name!r}", field="name")
        return await worker.try_once(messages.test_message(name, self._sender))

    # -- life cycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Read the targets' stored last deliveries, then start each target's worker and the
        watchers (in the running event loop)."""
        if not self._workers:
            return
        try:
            async with self._db.read() as session:
                stored = await repo.load_all(session)
        except Exception:
            log.exception("notifications: the targets' last deliveries could not be read")
            stored = {}
        for name, state in stored.items():
            if (worker := self._workers.get(name)) is not None and worker.state == TargetState():
                worker.state = state
        for worker in self._workers.values():
            worker.start()
        if self._wanted(NotificationEvent.HEALTH_CHANGED):
            self._watching.append(asyncio.create_task(self._follow_health(), name="notify-health"))
        if self._overdue_hours is not None and self._wanted(NotificationEvent.BACKUP_OVERDUE):
            self._watching.append(asyncio.create_task(self._watch_overdue(), name="notify-overdue"))

    async def stop(self) -> None:
        for task in [*self._watching, *self._tasks]:
            task.cancel()
        await asyncio.gather(*self._watching, *self._tasks, return_exceptions=True)
        for worker in self._workers.values():
            await worker.stop()
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def _save(self, name: str, state: TargetState) -> None:
        async with self._db.write() as session:
            await repo.save(session, name, state)

    # -- events -------------------------------------------------------------------------------

    def publish(self, notice: Notice) -> None:
        """Queue a notice for every target that wants its event."""
        for worker in self._workers.values():
            if notice.event is not None and worker.wants(notice.event):
                worker.put(notice)

    def operation_ended(self, op: Operation) -> None:
        """The runner's listener: note the events an ended operation makes (never waits)."""
        if not self._workers:
            return
        if op.status is OperationStatus.FAILED:
            self.publish(messages.operation_failed(op, self._sender))
        if op.kind is OperationKind.APPLY_RESTORE_POINT and self._wanted(NotificationEvent.APPLY_FINISHED):
            self._spawn(self._apply_finished(op))
        if (
            op.kind is OperationKind.CREATE_RESTORE_POINT
            and op.status is OperationStatus.SUCCEEDED
            and "changedBy" in op.params
            and self._wanted(NotificationEvent.CONFIGURATION_CHANGED)
        ):
            self._spawn(self._configuration_changed(op))
        if (
            op.kind is OperationKind.VERIFY_BACKUPS
            and op.status is OperationStatus.SUCCEEDED
            and self._verification is not None
            and self._wanted(NotificationEvent.VERIFICATION_FAILED)
        ):
            self._spawn(self._verification_failed(op))

    def _wanted(self, event: NotificationEvent) -> bool:
        return any(worker.wants(event) for worker in self._workers.values())

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _verification_failed(self, op: Operation) -> None:
        """What this verification found damaged or missing and could not repair (a restore point,
        a local or remote copy), if anything: what a person must act on."""
        assert self._verification is not None
        try:
            unresolved = await self._verification.unresolved()
        except Exception:
            log.exception("notifications: could not read what verification %s found", op.id)
            return
        found = [u for u in unresolved if u.verification.verified_at >= op.created_at]
        if found:
            problems = [f"{u.name}: {u.verification.state.value}" for u in found]
            self.publish(messages.verification_failed(problems, self._sender))

    async def _apply_finished(self, op: Operation) -> None:
        try:
            point = await self._restore_points.get(op.restore_point_id) if op.restore_point_id else None
        except Exception:
            log.exception("notifications: could not read restore point %s", op.restore_point_id)
            point = None
        self.publish(messages.apply_finished(op, point, self._sender))

    async def _configuration_changed(self, op: Operation) -> None:
        point = previous = summary = None
        changes: list[Change] = []
        try:
            point = await self._restore_points.get(op.restore_point_id) if op.restore_point_id else None
            if point is not None:
                before = await self._restore_points.page(
                    first=1, after=None, narrow=RestorePointFilter(created_before=point.created_at)
                )
                previous = before.items[0] if before.items else None
            if point is not None and previous is not None:
                diff = await self._diffs.compare(previous.id, point.id)
                summary = diff.summary
                changes = diff.changes[: messages.FIRST_CHANGES]
        except Exception:
            log.exception("notifications: could not compare the restore point of %s with the one before", op.id)
        self.publish(messages.configuration_changed(op, point, previous, summary, changes, self._sender))

    async def _follow_health(self) -> None:
        last: BackupHealth | None = None
        try:
            async for health in self._health.follow():
                if last is not None and health.status != last.status:
                    self.publish(messages.health_changed(last.status, health.status, health.problems, self._sender))
                last = health
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("notifications: backup health can no longer be followed")

    async def _watch_overdue(self) -> None:
        """BACKUP_OVERDUE once when no restore point succeeded for overdue_hours (counted from
        the start of the server when there never was one), again after the next success."""
        hours = self._overdue_hours or 0.0
        since = utc_now(self._clock)
        told_for: datetime | None = None
        while True:
            try:
                last = (await self._health.read()).last_success_at
                reference = last or since
                if utc_now(self._clock) - reference > timedelta(hours=hours) and told_for != reference:
                    told_for = reference
                    self.publish(messages.backup_overdue(last, hours, self._sender))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("notifications: could not look for an overdue backup")
            await asyncio.sleep(self._poll)
