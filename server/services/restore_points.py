"""Restore points: create one from every source, list, read and delete them."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime

from server.clock import SYSTEM_CLOCK, Clock, utc_now
from server.model import manifests
from server.model.errors import Conflict, InvalidInput, KnownDamaged, NotFound, Pinned, quoted
from server.model.expiry import check_expiry
from server.model.ids import is_well_formed, new_id
from server.model.item_merge import ItemChoice
from server.model.recent_pages import RecentPages
from server.model.records import (
    ManifestEntry,
    Operation,
    OperationKind,
    Page,
    RestorePoint,
    RestorePointFilter,
    RestorePointOrigin,
)
from server.model.verification import VerificationState, VerifiedKind
from server.operations.holds import Held, Hold
from server.operations.live import OperationContext
from server.operations.runner import OperationRunner
from server.services.blob_keeper import BlobKeeper
from server.services.capture.driver import capture_point, capture_sources
from server.services.capture.store import CaptureTally, store_captured
from server.sources.base import CapturedItem, Source
from server.storage.blobs.content_store import ContentStore
from server.storage.db import items_repo, verification_repo
from server.storage.db import restore_points_repo as repo
from server.storage.db.database import Database

MAX_LABEL = 200
# Manifest entries read at a time by a background reader (a few milliseconds of the loop each).
ENTRY_PART = 2000
MAX_NOTE = 4000


def _printable(text: str, field: str, allowed: str = "") -> str:
    if any(ch < " " and ch not in allowed for ch in text):
        raise InvalidInput(f"the {field} has control characters", field=field)
    return text


def clean_label(label: str | None, created_at: datetime) -> str:
    label = _printable((label or "").strip(), "label")
    if len(label) > MAX_LABEL:
        raise InvalidInput(f"the label is longer than {MAX_LABEL} characters", field="label")
    return label or f"Restore point {created_at:%Y-%m-%d %H:%M} UTC"


def clean_note(note: str | None) -> str | None:
    note = _printable((note or "").strip(), "note", allowed="\n\t")
    if len(note) > MAX_NOTE:
        raise InvalidInput(f"the note is longer than {MAX_NOTE} characters", field="note")
    return note or None


MAX_SEARCH = 200


def check_filter(narrow: RestorePointFilter) -> RestorePointFilter:
    """The filter with its search trimmed; INVALID_INPUT for a bad search or a time without offset."""
    for field, moment in (("createdAfter", narrow.created_after), ("createdBefore", narrow.created_before)):
        if moment is not None and moment.utcoffset() is None:
            raise InvalidInput(f"{field} needs a UTC offset, e.g. 2026-03-01T12:00:00Z", field=field)
    if narrow.search is None:
        return narrow
    search = _printable(narrow.search.strip(), "search")
    if len(search) > MAX_SEARCH:
        raise InvalidInput(f"the search is longer than {MAX_SEARCH} characters", field="search")
    return dataclasses.replace(narrow, search=search or None)


class RestorePointService:
    def __init__(
        self,
        *,
        db: Database,
        store: ContentStore,
        keeper: BlobKeeper,
        runner: OperationRunner,
        sources: Sequence[Source],
        server_version: str,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._db = db
        self._clock = clock  # createdAt: what retention reads, so a test clock moves it too
        self._store = store
        self._keeper = keeper
        self._runner = runner
        self._sources = sources
        self._server_version = server_version
        self._recent: RecentPages[Page[RestorePoint]] = RecentPages()
        self._expiry_listeners: list[Callable[[], None]] = []

    async def get(self, point_id: str) -> RestorePoint | None:
        if not is_well_formed(point_id, "rp"):
            return None
        async with self._db.read() as session:
            return await repo.get_restore_point(session, point_id)

    async def require(self, point_id: str, field: str = "id") -> RestorePoint:
        point = await self.get(point_id)
        if point is None:
            raise NotFound(f"no restore point with id {quoted(point_id)}", field=field)
        return point

    async def get_many(self, ids: Sequence[str]) -> dict[str, RestorePoint]:
        """The restore points with these ids that exist, by id."""
        ids = [point_id for point_id in ids if is_well_formed(point_id, "rp")]
        if not ids:
            return {}
        async with self._db.read() as session:
            return await repo.get_restore_points(session, ids)

    async def page(
        self, *, first: int, after: str | None, narrow: RestorePointFilter | None = None
    ) -> Page[RestorePoint]:
        """Newest first, narrowed by `narrow` (see check_filter)."""
        if narrow is not None and not narrow.empty:
            narrow = check_filter(narrow)
            if narrow.schedule_id is not None and not is_well_formed(narrow.schedule_id, "sch"):
                return Page(items=[], cursors=[], has_next_page=False, total_count=0)  # names no schedule
            async with self._db.read() as session:
                return await repo.page_restore_points(session, first=first, after=after, narrow=narrow)

        async def read() -> Page[RestorePoint]:
            async with self._db.read() as session:
                return await repo.page_restore_points(session, first=first, after=after)

        return await self._recent.first_page(first, read) if after is None else await read()

    async def total_size(self) -> int:
        """Every restore point's size added up (shared content counted in each)."""
        async with self._db.read() as session:
            return await repo.total_size_bytes(session)

    async def count(self, narrow: RestorePointFilter | None = None) -> int:
        if narrow is not None and not narrow.empty:
            if narrow.schedule_id is not None and not is_well_formed(narrow.schedule_id, "sch"):
                return 0
            async with self._db.read() as session:
                return await repo.count_restore_points(session, check_filter(narrow))

        async def read() -> int:
            async with self._db.read() as session:
                return await repo.count_restore_points(session)

        return await self._recent.count(read)

    async def entries(self, point_id: str) -> list[ManifestEntry]:
        async with self._db.read() as session:
            return await repo.list_entries(session, point_id)

    async def entries_in_parts(self, point_id: str, between: Callable[[], Awaitable[None]]) -> list[ManifestEntry]:
        """entries() for a background reader: read a part at a time, `between()` awaited after
        each (a pause for a create, a cancel check), so neither the event loop, a create nor a
        cancel waits for a whole manifest."""
        async with self._db.read() as session:
            return await repo.list_entries_in_parts(session, point_id, ENTRY_PART, between)

    async def entries_of_items(self, point_id: str, items: Sequence[tuple[str, str]]) -> list[ManifestEntry]:
        """Only the entries these items need (items_repo.entries_of_items), not the manifest."""
        async with self._db.read() as session:
            return await items_repo.entries_of_items(session, point_id, items)

    async def sources_of(self, point_id: str) -> list[str]:
        async with self._db.read() as session:
            return await items_repo.sources_of(session, point_id)

    async def hold(self, point_id: str, field: str = "restorePointId") -> tuple[RestorePoint, Hold]:
        """Hold a restore point for an operation that will read it, then check it exists
        (NOT_FOUND if a delete won); the operation keeps the hold until it ends."""
        hold = await self._runner.holds.hold(Held.RESTORE_POINT, point_id)
        try:
            return await self.require(point_id, field=field), hold
        except BaseException:
            hold.release()
            raise

    async def hold_only(self, point_id: str) -> Hold:
        """Hold a restore point for an operation that will read it; the caller checks it exists."""
        return await self._runner.holds.hold(Held.RESTORE_POINT, point_id)

    async def refuse_if_damaged(self, point_id: str, field: str = "restorePointId") -> None:
        """CONTENT_DAMAGED when the restore point's last verification found it DAMAGED or
        MISSING (and nothing repaired it): an export or apply of it is refused up front."""
        async with self._db.read() as session:
            found = (await verification_repo.get_many(session, VerifiedKind.RESTORE_POINT, [point_id])).get(point_id)
        if found is None or found.state is VerificationState.OK:
            return
        first = f": {found.problems[0]}" if found.problems else ""
        more = f" (and {len(found.problems) - 1} more)" if len(found.problems) > 1 else ""
        raise KnownDamaged(
            f"restore point {point_id} is {found.state.value} (verified at {found.verified_at:%Y-%m-%d %H:%M:%S} UTC"
            f"){first}{more}; nothing was started. Verify it again with a good local copy to repair it, "
            "or use another restore point",
            field=field,
        )

    async def delete(
        self,
        point_id: str,
        *,
        before_freeing: Callable[[], Awaitable[None]] | None = None,
        expired_by: datetime | None = None,
    ) -> str:
        """Delete a restore point and free the blobs only it used; BUSY while anything holds it.
        The record goes in one transaction; blobs left by a stop before they were freed are
        collected at the next start (BlobKeeper.collect_all). `before_freeing`: a test's pause.
        `expired_by`: only if it has expired by then (else CONFLICT: its expiry changed meanwhile)."""
        if not is_well_formed(point_id, "rp"):
            raise NotFound(f"no restore point with id {quoted(point_id)}", field="id")
        busy = f"an operation is using restore point {point_id}; try again after it"
        # In this order: the hold first (BUSY while anything reads it), then the keeper's lock.
        async with (
            self._runner.holds.deleting(Held.RESTORE_POINT, point_id, busy=busy),
            self._keeper.lock,
            self._db.write() as session,
        ):
            point = await repo.get_restore_point(session, point_id)
            if point is None:
                raise NotFound(f"no restore point with id {quoted(point_id)}", field="id")
            if point.pinned:
                raise Pinned(f"restore point {point_id} is pinned; unpin it before deleting it", field="id")
            digests = await repo.delete_restore_point(session, point_id, expired_by=expired_by)
            if digests is None:
                raise Conflict(f"restore point {point_id} has not expired (its expiry was changed)", field="id")
        self._recent.forget()
        if before_freeing is not None:
            await before_freeing()
        await self._keeper.collect(digests)
        return point_id

    async def update(
        self,
        point_id: str,
        *,
        label: str | None = None,
        note: str | None = None,
        pinned: bool | None = None,
        clear_note: bool = False,
        expires_at: datetime | None = None,
        clear_expiry: bool = False,
    ) -> RestorePoint:
        """Change its label, note, pinned flag or expiry (None: left as it is; `clear_note`: note
        removed; `clear_expiry`: it no longer expires)."""
        if not is_well_formed(point_id, "rp"):
            raise NotFound(f"no restore point with id {quoted(point_id)}", field="id")
        changes: dict[str, object] = {}
        if label is not None:
            if not label.strip():
                raise InvalidInput("the label is empty", field="label")
            changes["label"] = clean_label(label, utc_now(self._clock))
        if note is not None or clear_note:
            changes["note"] = clean_note(note)
        if pinned is not None:
            changes["pinned"] = pinned
        if expires_at is not None:
            changes["expires_at"] = check_expiry(expires_at, utc_now(self._clock))
        elif clear_expiry:
            changes["expires_at"] = None
        async with self._db.write() as session:
            point = await repo.update_restore_point(session, point_id, changes)
        if point is None:
            raise NotFound(f"no restore point with id {quoted(point_id)}", field="id")
        self._recent.forget()
        if "expires_at" in changes or "pinned" in changes:
            self._expiry_changed()
        return point

    def on_expiry_change(self, listener: Callable[[], None]) -> None:
        """Call `listener` whenever a restore point's expiry may have moved (the expiry timer)."""
        self._expiry_listeners.append(listener)

    def _expiry_changed(self) -> None:
        for listener in self._expiry_listeners:
            listener()

    async def next_expiry(self) -> datetime | None:
        """When the next unpinned restore point expires (possibly past already); None: none will."""
        async with self._db.read() as session:
            return await repo.next_expiry(session)

    async def expired(self, now: datetime, *, limit: int = 500) -> list[RestorePoint]:
        """Unpinned restore points expired by `now`, the earliest first."""
        async with self._db.read() as session:
            return await repo.expired_restore_points(session, now, limit=limit)

    def is_held(self, point_id: str) -> bool:
        """Whether an operation is reading it now (a delete would be BUSY)."""
        return self._runner.holds.is_held(Held.RESTORE_POINT, point_id)

    async def start_create(
        self,
        *,
        label: str | None,
        note: str | None,
        requested_by: str | None,
        origin: RestorePointOrigin = RestorePointOrigin.MANUAL,
        expires_at: datetime | None = None,
    ) -> Operation:
        """Start an operation that captures every source into a new restore point (one that
        expires at `expires_at`, when given: INVALID_INPUT unless ahead and within ten years)."""
        label_text = clean_label(label, datetime.now(UTC)) if label else None
        note_text = clean_note(note)
        if expires_at is not None:
            expires_at = check_expiry(expires_at, utc_now(self._clock))

        async def job(ctx: OperationContext) -> None:
            await self.capture(
                ctx, label=label_text, note=note_text, origin=origin, created_by=requested_by, expires_at=expires_at
            )

        params: dict[str, object] = {"label": label_text, "note": note_text}
        if expires_at is not None:
            params["expiresAt"] = expires_at.isoformat()
        return await self._runner.submit(
            OperationKind.CREATE_RESTORE_POINT, job, requested_by=requested_by, params=params
        )

    async def capture(
        self,
        ctx: OperationContext,
        *,
        label: str | None,
        note: str | None,
        origin: RestorePointOrigin,
        created_by: str | None,
        schedule_id: str | None = None,
        expires_at: datetime | None = None,
    ) -> RestorePoint:
        """Snapshot every source into the content store and record the restore point (the
        capture driver, capture/driver.py: a capture that stops early leaves nothing behind)."""
        point = await capture_point(
            ctx,
            sources=self._sources,
            store=self._store,
            records=self,
            manifest_held=self._manifest_held,
            label=label,
            note=note,
            origin=origin,
            created_by=created_by,
            schedule_id=schedule_id,
            expires_at=expires_at,
        )
        if expires_at is not None:
            self._expiry_changed()
        return point

    async def capture_all(
        self, ctx: OperationContext, pinned: list[str], *, only: Sequence[str] | None = None
    ) -> CaptureTally:
        """Read every source (`only`: these) and store its content (an apply's safety restore
        point; see capture/driver.py): each stored blob's digest is appended to `pinned` (and
        pinned), for the caller to record or release."""
        sources = self._sources if only is None else [s for s in self._sources if s.name in set(only)]
        return await capture_sources(
            ctx, sources=sources, store=self._store, pinned=pinned, manifest_held=self._manifest_held
        )

    async def store_items(
        self, ctx: OperationContext, captures: Sequence[tuple[Source, Sequence[CapturedItem]]], pinned: list[str]
    ) -> CaptureTally:
        """Store items a source captured (some of its items only: an item apply's state before);
        each stored blob's digest is appended to `pinned` (and pinned), as by capture_all."""
        return await store_captured(ctx, self._store, captures, pinned, manifest_held=self._manifest_held)

    async def _manifest_held(self, manifest_id: str) -> bool:
        async with self._db.read() as session:
            return await repo.manifest_held(session, manifest_id)

    def new_point(
        self,
        entries: Sequence[ManifestEntry],
        stored: int,
        *,
        label: str | None,
        note: str | None,
        origin: RestorePointOrigin,
        created_by: str | None,
        point_id: str | None = None,
        checksum: str | None = None,
        schedule_id: str | None = None,
    ) -> RestorePoint:
        """The record of a restore point holding `entries` (not yet saved); `checksum` is
        theirs, when the caller has it already."""
        created_at = utc_now(self._clock)
        return RestorePoint(
            id=point_id or new_id("rp"),
            label=label or clean_label(None, created_at),
            note=note,
            origin=origin,
            created_at=created_at,
            created_by=created_by,
            size_bytes=sum(e.size for e in entries),
            stored_bytes=stored,
            item_count=len(entries),
            checksum=checksum or manifests.manifest_checksum(entries),
            server_version=self._server_version,
            schedule_id=schedule_id,
        )

    async def collect(self, digests: Iterable[str]) -> int:
        """Free those of these blobs that nothing references or pins any more."""
        return await self._keeper.collect(digests)

    async def record(
        self,
        point: RestorePoint,
        entries: Sequence[ManifestEntry],
        pinned: list[str],
        *,
        manifest_id: str | None = None,
        row_counts: Mapping[str, int] | None = None,
        items: Sequence[ItemChoice] | None = None,
    ) -> RestorePoint | None:
        """Make its blobs durable, insert it (sharing a stored manifest with the same id) with
        the index rows of its packed blobs that have none yet, then release the pins its
        blobs had in flight. If a restore point has its id already (recorded since the caller
        looked: two imports of one copy), nothing is inserted, the pins stay the caller's,
        and that restore point is returned. `row_counts`: the rows of its table files, by
        digest, as the capture counted them."""
        await asyncio.to_thread(self._store.sync)
        if items:  # an items-only safety restore point (services/apply/in_place.py)
            point = dataclasses.replace(point, items_only=tuple((c.source, c.path) for c in items))
        if manifest_id is None:
            manifest_id = await asyncio.to_thread(manifests.manifest_id, entries)
        async with self._keeper.lock:
            async with self._db.write() as session:
                if (
                    taken := await repo.add_restore_point(session, point, entries, manifest_id=manifest_id)
                ) is not None:
                    return taken
                indexed = await self._keeper.index_entries(session, entries)
                if row_counts:  # a table's rows, counted by its source: with the point, or not at all
                    await items_repo.record_row_counts(session, row_counts)
            self._store.packs.mark_indexed(indexed)  # only once committed: else the next point inserts them
            self._recent.forget()
            self._store.unpin(pinned)
            pinned.clear()
        return None
