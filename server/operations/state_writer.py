"""Writes live operation state to the database: batched log lines and throttled progress."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Callable, Iterable

from server.operations.live import LiveOperation
from server.storage.db import operations_repo as repo
from server.storage.db.database import Database

log = logging.getLogger(__name__)

FLUSH_INTERVAL = 0.2  # how long a log line or progress change may wait to reach the database


class StateWriter:
    """One writer for all live operations, so each flush is one small transaction."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._soon = asyncio.Event()

    def flush_soon(self) -> None:
        """Flush now rather than at the next interval (a log reservation is running out)."""
        self._soon.set()

    def start(self, lives: Callable[[], Iterable[LiveOperation]]) -> None:
        """Flush whatever changed every FLUSH_INTERVAL, until stopped."""
        self._task = asyncio.create_task(self._forever(lives), name="operation-state-writer")

    async def stop(self, lives: Iterable[LiveOperation]) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if (error := await self.flush_all(lives)) is not None:
            log.error("storing operation state at shutdown failed (%s: %s)", type(error).__name__, error)

    async def _forever(self, lives: Callable[[], Iterable[LiveOperation]]) -> None:
        failing = False
        while True:
            if failing:  # no early retries: a job logging on would make them a busy loop
                await asyncio.sleep(FLUSH_INTERVAL)
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._soon.wait(), FLUSH_INTERVAL)
            self._soon.clear()
            # An ended operation's own task retries storing its end; skipping it here keeps
            # one failure from being logged twice every FLUSH_INTERVAL.
            error = await self.flush_all(live for live in lives() if not live.ended.is_set())
            if error is not None and not failing:
                # Once per failing spell, not every 200 ms: a full disk would flood the log.
                log.error("storing operation state failed (%s: %s); will retry", type(error).__name__, error)
            elif error is None and failing:
                log.warning("storing operation state works again")
            failing = error is not None

    async def flush_all(self, lives: Iterable[LiveOperation]) -> Exception | None:
        """Flush every operation with changes; one that fails does not stop the others.
        Returns the last error, if any (the state stays in memory for the next try)."""
        failure = None
        for live in list(lives):
            if live.dirty or live.unflushed or live.reservation_wanted() is not None:
                try:
                    await self.flush(live)
                except Exception as error:
                    failure = error
        return failure

    async def flush(self, live: LiveOperation) -> None:
        """Store the operation's state and pending log lines in one transaction, and reserve
        more log numbers if it is using up its reservation."""
        async with self._lock:
            lines = list(live.unflushed)
            reserve = live.reservation_wanted()
            op = live.op
            if lines:  # the newest line readers can get once this commits
                op = dataclasses.replace(op, last_sequence=max(op.last_sequence, lines[-1].sequence))
            live.dirty = False
            try:
                async with self._db.write() as session:
                    await repo.append_log(session, op.id, lines)
                    await repo.save_operation(session, op, log_reserved_through=reserve)
            except BaseException:
                live.dirty = True  # not stored: the next flush must write the state again
                raise
            if reserve is not None:
                live.reserved(reserve)
            live.stored(lines)
