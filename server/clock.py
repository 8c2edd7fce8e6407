"""The clock the server reads where a length of time matters (link expiry, token expiry,
the hash cache's racy window): the system's, or one a test moves forward instead of sleeping."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def time(self) -> float:
        """Seconds since the epoch, like time.time()."""
        ...

    def time_ns(self) -> int:
        """Nanoseconds since the epoch, like time.time_ns()."""
        ...


class SystemClock:
    """The real wall clock."""

    def time(self) -> float:
        """time.time()."""
        return time.time()

    def time_ns(self) -> int:
        """time.time_ns()."""
        return time.time_ns()


SYSTEM_CLOCK: Clock = SystemClock()


def utc_now(clock: Clock) -> datetime:
    """The clock's present as an aware UTC datetime."""
    return datetime.fromtimestamp(clock.time(), UTC)
