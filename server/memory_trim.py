"""Give memory back after many subscriptions end, e.g. a crowd of websocket followers leaving.

A subscription's graphql-core execution builds reference cycles (its collected fields, the
traceback of a send to a closed socket) that live as long as the subscription, so they sit in
the collector's oldest generation when it ends. gc_tuning.py makes full collections rare, so
each crowd that came and went left its garbage behind, the next crowd's peak came on top, and
the server's memory rose round after round (200 followers a round: 128 -> 164 MB in 6 rounds,
flat with the default thresholds). One full collection once a burst of ends is over frees that
garbage while the next crowd can still reuse the space; malloc_trim then hands glibc's free
pages back to the system.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import logging
import time
from collections.abc import Callable

log = logging.getLogger("server.memory")

# Ended subscriptions that make a burst worth a full collection (a follower has about three).
BURST = 100
# Collect once no subscription has ended for this long: the burst is over.
QUIET_SECONDS = 1.0
# ...but no later than this after the burst began, so a steady stream of ends is collected too.
MAX_WAIT_SECONDS = 10.0


class _Collector:
    def __init__(self) -> None:
        self.ended = 0
        self.first_due: float | None = None
        self.timer: asyncio.TimerHandle | None = None

    def subscription_ended(self) -> None:
        self.ended += 1
        if self.ended < BURST:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self.first_due is None:
            self.first_due = now + MAX_WAIT_SECONDS
        if self.timer is not None:
            self.timer.cancel()
        self.timer = loop.call_at(min(now + QUIET_SECONDS, self.first_due), self.collect)

    def collect(self) -> None:
        self.ended, self.first_due, self.timer = 0, None, None
        started = time.perf_counter()
        # On the loop: a collection holds the GIL throughout, so a thread would not spare it.
        freed = gc.collect()
        elapsed_ms = (time.perf_counter() - started) * 1000
        log.debug("collected %d objects in %.0f ms after a burst of ended subscriptions", freed, elapsed_ms)
        if _malloc_trim is not None:
            # ctypes lets go of the GIL, so the trim's walk of the heap runs beside the loop.
            asyncio.get_running_loop().run_in_executor(None, _malloc_trim, 0)


def _find_malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        return None


_malloc_trim = _find_malloc_trim()
_collector = _Collector()


def subscription_ended() -> None:
    """Note that a subscription ended (call on the event loop); a burst of them is collected."""
    _collector.subscription_ended()
