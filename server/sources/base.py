"""The source interface: what a restore point captures, and how it is put back."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO, Protocol, runtime_checkable

from server.model.records import EntryKind, ManifestEntry

OpenBlob = Callable[[str], BinaryIO]


@dataclass(frozen=True, slots=True)
class CapturedItem:
    """One item a source holds at the moment of its capture; `open` reads its content."""

    path: str
    kind: EntryKind
    size: int
    mode: int
    mtime: datetime | None
    open: Callable[[], BinaryIO] | None  # None for directories
    # A digest the source vouches for (from a hash cache, or computed while it snapshotted):
    # if the content store holds that blob with this size, it is reused without reading.
    digest: str | None = None
    # Called (in a worker thread) with the digest after the content was read and stored,
    # so the source can remember it for the next capture.
    on_stored: Callable[[str], None] | None = None
    # The item as it is now (stat taken again), for another read after it changed while it
    # was read; None: a change fails the capture at once (SOURCE_CHANGED).
    refresh: Callable[[], CapturedItem] | None = None
    # A database table's rows, as the source wrote them into the item (None: not a table, or
    # not counted): kept by the item's content, so that a listing shows it without the blob.
    row_count: int | None = None


@dataclass(frozen=True, slots=True)
class SourceInfo:
    name: str
    kind: str
    reachable: bool
    size_bytes: int | None
    detail: str | None = None
    location: str | None = None  # a folder path, or a database URL without its password
    problem: str | None = None  # why it cannot be read now; None when reachable


class Source(Protocol):
    """A place configuration lives: the settings store, a folder tree, a SQL database."""

    name: str
    kind: str

    async def describe(self) -> SourceInfo:
        """What the source is and whether it can be read now."""
        ...

    async def capture(self) -> Sequence[CapturedItem]:
        """A consistent view of every item, taken at one moment."""
        ...

    async def apply(self, entries: Sequence[ManifestEntry], open_blob: OpenBlob) -> None:
        """Replace the source's whole state with these entries, atomically."""
        ...


class ItemChanged(Exception):
    """Raised by an item's `open` when what it finds is no longer the item the capture saw
    (another file put at its path since): read it again, or fail with SOURCE_CHANGED."""


class StagingStopped(Exception):
    """Staging stopped early because `should_stop` said so (a cancel, or the server stopping)."""


class StagedApply(Protocol):
    """A source's new state, written aside and checked, not yet in place."""

    # Items the live state already held as the restore point has them, kept rather than
    # written again from the store (for the log).
    kept: int

    async def commit(self) -> None:
        """Put the staged state in place, atomically (as `apply` would have)."""
        ...

    async def discard(self) -> None:
        """Throw the staged state away; the source is left as it is."""
        ...

    async def tidy(self) -> None:
        """After `commit`: start removing the state it replaced. Called once the apply has
        finished, so that work does not compete with the restart and the read-back."""
        ...


@runtime_checkable
class ReadBack(Protocol):
    """A committed staged state that can say whether its source still holds what it put
    there from what it wrote (each file's stat as committed), reading only what changed
    since, where a capture would list and compare every item again."""

    async def read_back(self, entries: Sequence[ManifestEntry]) -> bool:
        """Whether the source holds exactly these entries (mtimes aside)."""
        ...


@runtime_checkable
class StagingSource(Protocol):
    """A source that can do the slow part of an apply before anything changes: it writes the
    new state aside, checking every blob's SHA-256 as it copies it, and swaps it in later."""

    def stage(
        self,
        entries: Sequence[ManifestEntry],
        open_blob: OpenBlob,
        *,
        on_bytes: Callable[[int], None],
        should_stop: Callable[[], bool],
    ) -> StagedApply:
        """Write the new state aside (blocking: call it in a thread). A blob that does not
        match its SHA-256 raises OperationFailed(OperationErrorCode.CONTENT_DAMAGED), and nothing is left behind."""
        ...

    def discard_leftovers(self) -> None:
        """Remove a staged state that a stopped process left aside, unused (blocking)."""
        ...


@runtime_checkable
class PartialSource(Protocol):
    """A source that can replace some of its items and leave the others as they are now (a
    database: only the chosen tables, so rows written to the others meanwhile stay)."""

    async def apply_only(self, entries: Sequence[ManifestEntry], open_blob: OpenBlob) -> None:
        """Replace just the items these entries name, atomically; the rest is not touched."""
        ...

    async def check_only(self, entries: Sequence[ManifestEntry], open_blob: OpenBlob) -> None:
        """Before anything changes: refuse what apply_only would refuse (the live schema), touching nothing."""
        ...


@runtime_checkable
class InPlaceSource(Protocol):
    """A source that puts back single items in place, at their own size (a folder: each
    chosen file renamed over its target, each chosen folder swapped), never the whole source.
    Paths are the manifest's; every method blocks (call it in a thread)."""

    def capture_paths(self, paths: Sequence[str]) -> Sequence[CapturedItem]:
        """These items as they are now (what is under a folder too) and the folders above them."""
        ...

    def stage_paths(self, chosen: Sequence[tuple[str, Sequence[ManifestEntry]]], open_blob: OpenBlob) -> StagedItems:
        """Write each item's new state beside it, checking every blob's SHA-256; nothing changes yet."""
        ...

    def clear_paths(self, paths: Sequence[str]) -> None:
        """Remove what a stopped run left beside these items (staged copies, trash)."""
        ...

    def read_back_paths(self, paths: Sequence[str], entries: Sequence[ManifestEntry]) -> bool:
        """Whether these items (and what is under them) hold exactly `entries` (mtimes aside)."""
        ...


class StagedItems(Protocol):
    """Items staged beside their targets (InPlaceSource.stage_paths), renamed in one by one."""

    @property
    def count(self) -> int: ...

    def commit(self, parents: Sequence[ManifestEntry], index: int) -> None:
        """Rename the item at `index` over its target (blocking); `parents`: modes of folders to make."""
        ...

    def discard(self) -> None:
        """Remove what is staged and not renamed in (blocking)."""
        ...
