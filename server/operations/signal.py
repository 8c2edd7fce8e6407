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
        # One future per waiter, woken in the order they came: a thousand log followers
        # are a thousand waiters, so waking one must cost one set_result, not a shield and
        # a wait_for (three hops through the loop each).
        self._waiters: dict[asyncio.Future[None], None] = {}

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def fire(self) -> None:
        """Wake every current waiter."""
        self.version += 1
        waiters, self._waiters = self._waiters, {}
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def wait(self, seen: int, timeout: float | None = None) -> None:
        """Return once the version moves past `seen` (at once if it already has)."""
        if self.version != seen:
            return
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters[waiter] = None
        timer = loop.call_later(timeout, _wake, waiter) if timeout is not None else None
        try:
            await waiter  # a cancelled waiter cancels only its own future
        finally:
            self._waiters.pop(waiter, None)
            if timer is not None:
                timer.cancel()


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
