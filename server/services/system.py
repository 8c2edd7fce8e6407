"""The running system as clients see it: its state (running, applying, restarting), its
version, and a fingerprint of its current configuration."""

from __future__ import annotations

import asyncio
import enum
import hashlib
from collections import deque
from collections.abc import AsyncIterator, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from server.model.errors import Busy
from server.model.manifests import manifest_checksum
from server.model.records import ManifestEntry
from server.operations.signal import Signal
from server.services.capture.store import manifest_entry
from server.sources.base import CapturedItem, Source

# A stream re-checks this often even without a signal; a safety net, not the mechanism.
IDLE_RECHECK = 5.0
# Transitions kept for followers that wake late: a short RESTARTING must not be coalesced away.
HISTORY = 16
CHUNK_SIZE = 1024 * 1024


class SystemState(enum.StrEnum):
    RUNNING = "RUNNING"
    APPLYING = "APPLYING"
    RESTARTING = "RESTARTING"


@dataclass(frozen=True, slots=True)
class SystemStatus:
    state: SystemState
    since: datetime
    operation_id: str | None  # the apply that put the system in this state
    server_version: str
    server_name: str = ""  # BACKUPS_SERVER_NAME


class SystemMonitor:
    """Holds the system's state; maintenance (anything but RUNNING) refuses settings writes."""

    def __init__(self, *, sources: Sequence[Source], server_version: str, server_name: str = "") -> None:
        self._sources = sources
        self._server_version = server_version
        self.server_name = server_name
        self._status = SystemStatus(SystemState.RUNNING, datetime.now(UTC), None, server_version, server_name)
        self._history: deque[tuple[int, SystemStatus]] = deque(maxlen=HISTORY)
        self._count = 0
        self.changed = Signal()

    @property
    def status(self) -> SystemStatus:
        return self._status

    def enter(self, state: SystemState, operation_id: str | None = None) -> None:
        """Move to `state` and wake every systemChanged subscriber."""
        if state is self._status.state and operation_id == self._status.operation_id:
            return
        self._status = SystemStatus(state, datetime.now(UTC), operation_id, self._server_version, self.server_name)
        self._count += 1
        self._history.append((self._count, self._status))
        self.changed.fire()

    def check_writable(self) -> None:
        """Raise Busy while a restore point is being applied (the settings store's hook)."""
        status = self._status
        if status.state is not SystemState.RUNNING:
            raise Busy(
                f"the system is {status.state.lower()} (operation {status.operation_id}): "
                "settings cannot change until the apply has finished"
            )

    async def follow(self) -> AsyncIterator[SystemStatus]:
        """The status now, then every transition after it (the last HISTORY, if it lags)."""
        seen = self.changed.version
        delivered = self._count
        yield self._status
        while True:
            await self.changed.wait(seen, IDLE_RECHECK)
            seen = self.changed.version
            for number, status in list(self._history):
                if number > delivered:
                    delivered = number
                    yield status

    async def current_entries(self, only: Collection[str] | None = None) -> list[ManifestEntry]:
        """What a restore point taken now would list (of the sources named in `only`, or all),
        without storing anything."""
        entries: list[ManifestEntry] = []
        for source in self._sources:
            if only is not None and source.name not in only:
                continue
            items = await source.capture()
            digests = await asyncio.to_thread(hash_items, items)
            entries.extend(manifest_entry(source, item, digest) for item, digest in zip(items, digests, strict=True))
        return entries

    async def fingerprint(self) -> str:
        """The checksum a restore point of the current configuration would have."""
        return manifest_checksum(await self.current_entries())


def same_content(ours: Sequence[ManifestEntry], theirs: Sequence[ManifestEntry]) -> bool:
    """Whether two entry lists hold the same items (order and mtimes aside)."""

    def canonical(entries: Sequence[ManifestEntry]) -> list[tuple[object, ...]]:
        return sorted((e.source, e.path, e.kind.value, e.size, e.sha256 or "", e.mode) for e in entries)

    return canonical(ours) == canonical(theirs)


def hash_items(items: Sequence[CapturedItem]) -> list[str | None]:
    """Each item's SHA-256: the one its source vouches for (a hash cache hit, the same trust
    a capture gives it), else read and hashed."""
    digests: list[str | None] = []
    for item in items:
        if item.open is None or item.digest is not None:
            digests.append(item.digest if item.open is not None else None)
            continue
        hasher = hashlib.sha256()
        with item.open() as stream:
            while chunk := stream.read(CHUNK_SIZE):
                hasher.update(chunk)
        digests.append(hasher.hexdigest())
    return digests
