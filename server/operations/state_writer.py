"""Writes live operation state to the database: batched log lines and throttled progress."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

from server.operations.live import LiveOperation
from server.storage import operations_repo as repo
from server.storage.database import Database

log = logging.getLogger(__name__)

FLUSH_INTERVAL = 0.2  # how long a log line or progress change may wait to reach the database


class StateWriter:
    """One writer for all live operations, so each flush is one small transaction."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    def start(self, lives: Callable[[], Iterable[LiveOperation]]) -> None:
        """Flush whatever changed every FLUSH_INTERVAL, until stopped."""
        self._task = asyncio.create_task(self._forever(lives), name="operation-state-writer")

    async def stop(self, lives: Iterable[LiveOperation]) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.flush_all(lives)

    async def _forever(self, lives: Callable[[], Iterable[LiveOperation]]) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL)
            try:
                await self.flush_all(lives())
            except Exception:
                log.exception("flushing operation state failed; will retry")

    async def flush_all(self, lives: Iterable[LiveOperation]) -> None:
        for live in list(lives):
            if live.dirty or live.unflushed:
                await self.flush(live)

    async def flush(self, live: LiveOperation) -> None:
        """Store the operation's state and pending log lines in one transaction."""
        async with self._lock:
            lines = list(live.unflushed)
            op = live.op
            live.dirty = False
            async with self._db.write() as session:
                await repo.append_log(session, op.id, lines)
                await repo.save_operation(session, op)
            live.stored(lines)
