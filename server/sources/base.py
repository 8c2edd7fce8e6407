"""The source interface: what a restore point captures, and how it is put back."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO, Protocol

from server.domain.models import EntryKind, ManifestEntry

OpenBlob = Callable[[str], BinaryIO]


@dataclass(frozen=True, slots=True)
class SnapshotItem:
    """One item a source holds at the moment of its snapshot; `open` reads its content."""

    path: str
    kind: EntryKind
    size: int
    mode: int
    mtime: datetime | None
    open: Callable[[], BinaryIO] | None  # None for directories


@dataclass(frozen=True, slots=True)
class SourceInfo:
    name: str
    kind: str
    reachable: bool
    size_bytes: int | None
    detail: str | None = None


class Source(Protocol):
    """A place configuration lives: the settings store, a folder tree, a SQL database."""

    name: str
    kind: str

    async def describe(self) -> SourceInfo:
        """What the source is and whether it can be read now."""
        ...

    async def snapshot(self) -> Sequence[SnapshotItem]:
        """A consistent view of every item, taken at one moment."""
        ...

    async def apply(self, entries: Sequence[ManifestEntry], open_blob: OpenBlob) -> None:
        """Replace the source's whole state with these entries, atomically."""
        ...
