"""A location's listing, asked in the background and waited for only a bounded time, so that a
location that accepts connections and never answers slows no query.

Each read starts a listing unless one is already on its way (then it joins that one: at most
one listing per location at a time, however many queries ask), and waits for it up to a given
number of seconds. A listing that does not come in time goes on in the background and is kept
for the next read; meanwhile the read answers with the last listing when that one succeeded a
short while ago, else "not known now". A write of ours (an upload, a delete) is followed by a
fresh listing: a read after it never joins a listing started before it."""

from __future__ import annotations

import asyncio
import builtins
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from server.model.records import RemoteCopy
from server.storage.locations.store import LocationUnavailable

log = logging.getLogger(__name__)

RECENT_SECONDS = 30.0  # a successful listing this young stands in for one that is late


@dataclass(frozen=True, slots=True)
class Listing:
    """What a location held when last asked, or why it could not be listed."""

    copies: tuple[RemoteCopy, ...] | None  # None: not listed (see problem)
    problem: str | None
    at: float  # time.monotonic() of the answer


class ListingCache:
    """One location's listings (see the module's docstring)."""

    def __init__(self, name: str, list_copies: Callable[[], builtins.list[RemoteCopy]]) -> None:
        self.name = name
        self._list_copies = list_copies
        self._latest: Listing | None = None
        self._latest_generation = -1
        self._running: asyncio.Task[Listing] | None = None
        self._running_generation = -1
        self._generation = 0  # bumped by each write of ours

    @property
    def latest(self) -> Listing | None:
        """The last listing that came, without asking again."""
        return self._latest

    def written(self) -> None:
        """Something was written there by us: the next read asks again."""
        self._generation += 1

    async def read(self, *, wait: float) -> Listing:
        """A listing asked now when it comes within `wait` seconds; else a recent successful
        one, else a listing without copies saying the location did not answer in time."""
        task = self._running
        if task is None or task.done() or self._running_generation != self._generation:
            task = self._running = asyncio.get_running_loop().create_task(self._list(self._generation))
            self._running_generation = self._generation
        done, _ = await asyncio.wait({task}, timeout=wait)
        if done:
            return task.result()
        latest = self._latest
        if latest is not None and latest.copies is not None and time.monotonic() - latest.at <= RECENT_SECONDS:
            return latest
        return Listing(
            None,
            f"location {self.name!r} is unavailable: it did not answer within {wait:g} s (still asking)",
            time.monotonic(),
        )

    async def _list(self, generation: int) -> Listing:
        try:
            copies = await asyncio.to_thread(self._list_copies)
        except LocationUnavailable as error:
            listing = Listing(None, error.message, time.monotonic())
        except Exception as error:  # a store's error of another kind: this location only is not listed
            log.exception("location %s could not be listed", self.name)
            problem = f"location {self.name!r} is unavailable: it could not be listed ({type(error).__name__})"
            listing = Listing(None, problem, time.monotonic())
        else:
            listing = Listing(tuple(copies), None, time.monotonic())
        if generation >= self._latest_generation:  # a listing begun before a write never replaces one after it
            self._latest, self._latest_generation = listing, generation
        return listing
