"""Notices that the configuration changed, for schedules with afterChangeQuietSeconds.

Three ways in, all ending in `note`: the settings store tells at once (an in-process call
after each committed update); each folder source is watched through inotify (watchfiles'
awatch, in the event loop: its waiting happens in a worker thread); and a periodic
fingerprint check catches what neither sees (a database source, a folder whose watch could
not be set up, a change made while the server was stopped). A change only says "look again
once it has been quiet": whether a restore point is made is decided by the fingerprint
(server/services/schedules/after_change.py), so a burst of changes, or a change made and undone,
costs nothing more than one look.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from pathlib import Path

from server.clock import Clock, utc_now
from server.sources.base import Source
from server.sources.folder.source import FolderSource

log = logging.getLogger(__name__)


class ChangeWatch:
    """The newest change noticed: its number (`version`) and when (`changed_at`, on the
    server's injectable clock, so a test moves the quiet period forward instead of waiting)."""

    def __init__(
        self,
        *,
        sources: Sequence[Source],
        fingerprint: Callable[[], Awaitable[str]],
        clock: Clock,
        check_seconds: float,
    ) -> None:
        self._sources = sources
        self._fingerprint = fingerprint
        self._clock = clock
        self.check_seconds = check_seconds
        # Starting counts as a change: one made while the server was stopped was seen by no one.
        self.version = 1
        self.changed_at = utc_now(clock)
        self.seen_by = "the server's start (a change made while it was stopped)"
        self._last_fingerprint: str | None = None
        self.checked_at: datetime | None = None  # when the periodic check last read the fingerprint
        self._watchers: list[asyncio.Task[None]] = []
        self._ready: set[str] = set()  # folder sources whose watch is set up
        # The folder (inode) each watch is on: an apply swaps a source's whole folder for the
        # staged one, and inotify would go on watching the old one, now out of use.
        self.watched_inodes: dict[str, int] = {}
        self._stop = asyncio.Event()
        self._listeners: list[Callable[[], None]] = []

    def on_note(self, listener: Callable[[], None]) -> None:
        """Call `listener()` after each change noticed (the scheduler wakes to time its quiet period)."""
        self._listeners.append(listener)

    def note(self, why: str) -> None:
        """A change was seen now (settings store, a folder, a fingerprint check)."""
        self.version += 1
        self.changed_at = utc_now(self._clock)
        self.seen_by = why
        # The look this change asks for covers every source: the periodic check starts over
        # from the fingerprint it reads next, rather than report this change a second time.
        self._last_fingerprint = None
        log.debug("configuration change noticed (%s); change %d", why, self.version)
        for listener in self._listeners:
            listener()

    # -- folders ---------------------------------------------------------------------------

    def watch_folders(self) -> None:
        """Start watching every folder source (once; only when a schedule wants changes)."""
        if self._watchers:
            return
        for source in self._sources:
            if isinstance(source, FolderSource):
                self._watchers.append(asyncio.create_task(self._watch(source), name=f"watch-{source.name}"))

    @property
    def watching(self) -> bool:
        """Whether every folder source's watch is set up (it has waited once for events)."""
        return bool(self._watchers) and self._ready >= self._folders

    @property
    def _folders(self) -> set[str]:
        return {source.name for source in self._sources if isinstance(source, FolderSource)}

    async def _watch(self, source: FolderSource) -> None:
        path: Path = source.path
        try:
            while not self._stop.is_set():
                if not await self._watch_until_replaced(source, path):
                    return
                self.note(f"folder source {source.name!r} (its folder was replaced)")
        except asyncio.CancelledError:
            raise
        except Exception as error:  # missing folder, no inotify watches left: the periodic check remains
            log.warning(
                "folder source %s cannot be watched for changes (%s); a periodic check every %g s looks instead",
                source.name,
                error,
                self.check_seconds,
            )

    async def _watch_until_replaced(self, source: FolderSource, path: Path) -> bool:
        """Watch the folder at `path` until it stops (False) or another folder takes its
        place (True: watch again, on the new one)."""
        from watchfiles import awatch  # here: only a server with an after-change schedule needs it

        watched = (await asyncio.to_thread(path.stat)).st_ino
        self.watched_inodes[source.name] = watched
        # Every change counts (no filter): the fingerprint decides whether it mattered. An empty
        # batch each second (a timeout) says the watch is set up, lets it see stop_event, and is
        # when it looks whether the folder was replaced.
        async for batch in awatch(
            path,
            watch_filter=None,
            stop_event=self._stop,
            recursive=True,
            debounce=200,
            step=50,
            rust_timeout=1000,
            yield_on_timeout=True,
        ):
            if batch:
                self.note(f"folder source {source.name!r}")
            self._ready.add(source.name)
            now = await asyncio.to_thread(_inode, path)
            if now is not None and now != watched:
                return True
        return False

    async def stop(self) -> None:
        self._stop.set()
        for task in self._watchers:
            task.cancel()
        await asyncio.gather(*self._watchers, return_exceptions=True)
        self._watchers.clear()

    # -- the periodic check ----------------------------------------------------------------

    async def check_if_due(self) -> None:
        """Every `check_seconds` (on the clock): a fingerprint other than the last one seen is a change."""
        now = utc_now(self._clock)
        if self.checked_at is not None and (now - self.checked_at).total_seconds() < self.check_seconds:
            return
        before = self._last_fingerprint
        try:
            now_seen = await self.fingerprint()
        except Exception as error:  # a source that cannot be read now: the next check
            log.debug("the periodic fingerprint check could not read the configuration: %s", error)
            return
        finally:
            self.checked_at = now  # once read (a test waits for the first reading)
        if before is not None and now_seen != before:
            self.note("the periodic fingerprint check")
            self._last_fingerprint = now_seen

    async def fingerprint(self) -> str:
        """The configuration's fingerprint now (as applyPreview gives it), remembered for the
        periodic check: what a schedule has already looked at is no change to it."""
        self._last_fingerprint = await self._fingerprint()
        return self._last_fingerprint


def _inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except OSError:  # between the two renames of a swap: the next look sees the new folder
        return None  # (None is "not replaced yet")
