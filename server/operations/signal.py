"""A broadcast "something changed" signal that keeps no per-listener queue.

Listeners remember the version they last saw and wait for a newer one; whatever changed in
between is read from the current state. A slow listener therefore costs nothing while it
lags (it just sees the newest state, coalesced), and a listener that goes away leaves
nothing behind.
"""

from __future__ import annotations

import asyncio


class Signal:
    def __init__(self) -> None:
        self.version = 0
        self._changed: asyncio.Future[None] | None = None
        self.waiting = 0

    def fire(self) -> None:
        """Wake every current waiter."""
        self.version += 1
        if self._changed is not None and not self._changed.done():
            self._changed.set_result(None)
        self._changed = None

    async def wait(self, seen: int, timeout: float | None = None) -> None:
        """Return once the version moves past `seen` (at once if it already has)."""
        if self.version != seen:
            return
        if self._changed is None:
            self._changed = asyncio.get_running_loop().create_future()
        # shield: one waiter being cancelled must not cancel the future the others share.
        waiter = asyncio.shield(self._changed)
        self.waiting += 1
        try:
            await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            pass
        finally:
            self.waiting -= 1
