"""Holds: what operations and downloads are reading, so that nothing deletes it meanwhile.

One registry for the whole process, consulted by both sides: a reader takes its hold
before it checks that the thing exists, and a delete starts only when nothing holds it
(else BUSY) and keeps new holds waiting until it has finished. So either the reader
holds first and the delete is refused, or the delete wins and the reader's check finds
nothing (NOT_FOUND): never a reader working on something deleted under it. In-process is
enough: one server owns a data folder.

Every reader of a restore point (export, apply, and later diff) or of a local copy
(import, download) holds it through `hold`; every delete (and later retention) runs
under `deleting`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from enum import StrEnum

from server.model.errors import Busy


class Held(StrEnum):
    RESTORE_POINT = "restore point"
    LOCAL_COPY = "local copy"


Key = tuple[Held, str]


class Hold:
    """One hold on one thing; `release` lets it go (a second call does nothing)."""

    def __init__(self, registry: HoldRegistry, key: Key) -> None:
        self._registry = registry
        self.key = key
        self._released = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._registry._release(self.key)


class HoldRegistry:
    """Counts the holds on each thing and the deletes under way.

    Used only from the event loop, with no await between a check and the change it allows:
    the loop makes each check-and-mark one atomic step, as a lock would.
    """

    def __init__(self) -> None:
        self._holds: dict[Key, int] = {}
        self._deleting: dict[Key, asyncio.Event] = {}

    async def hold(self, kind: Held, thing_id: str) -> Hold:
        """Hold it, once any delete of it under way has ended; the caller then checks that
        it still exists (and releases the hold if not)."""
        key = (kind, thing_id)
        while (gate := self._deleting.get(key)) is not None:
            await gate.wait()
        return self.hold_now(kind, thing_id)

    def hold_now(self, kind: Held, thing_id: str) -> Hold:
        """Hold something the caller knows no delete can be removing (e.g. it just made it)."""
        key = (kind, thing_id)
        self._holds[key] = self._holds.get(key, 0) + 1
        return Hold(self, key)

    def is_held(self, kind: Held, thing_id: str) -> bool:
        return (kind, thing_id) in self._holds

    @asynccontextmanager
    async def deleting(self, kind: Held, thing_id: str, *, busy: str) -> AsyncIterator[None]:
        """Run a delete: BUSY (with `busy` as message) while anything holds it; new holds
        wait until the block ends. A second delete of it waits for the first."""
        key = (kind, thing_id)
        while (gate := self._deleting.get(key)) is not None:
            await gate.wait()
        if key in self._holds:
            raise Busy(busy, field="id")
        gate = self._deleting[key] = asyncio.Event()
        try:
            yield
        finally:
            del self._deleting[key]
            gate.set()

    def _release(self, key: Key) -> None:
        left = self._holds[key] - 1
        if left:
            self._holds[key] = left
        else:
            del self._holds[key]
