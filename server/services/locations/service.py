"""Backup locations: what copies each holds now, uploading a local copy there, fetching one back.

Listing asks the location every time (a copy another server put there shows up, one deleted
by hand disappears), but waits for it only a bounded time (listing.py): a location
that does not answer in time is shown as not reachable now, and slows no query. An upload
streams a local copy out and checks what arrived (upload.py); a fetch streams a remote copy
into the local copies folder, checks it (the SHA-256 recorded at upload when there is one,
then the ZIP in full) and leaves it there for importLocalCopy (fetch.py).
"""

from __future__ import annotations

import asyncio
import builtins
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from server.model.errors import (
    InvalidInput,
    LocationUnreachable,
    NotFound,
    quoted,
)
from server.model.records import LocalCopy, Operation, RemoteCopy
from server.operations.live import OperationContext
from server.operations.runner import OperationRunner
from server.services.local_copies.encryption import CopyEncryption
from server.services.local_copies.service import LocalCopyService
from server.services.locations.fetch import LocationFetch
from server.services.locations.listing import Listing, ListingCache
from server.services.locations.upload import LocationUpload
from server.storage.encryption import Keyring
from server.storage.local_copy.folder import LocalCopyFolder, copy_id
from server.storage.locations.store import (
    LocationStore,
    LocationUnavailable,
    parse_remote_copy_id,
    remote_copy_id,
)

log = logging.getLogger(__name__)

LOCAL = "local"
# Seconds a query waits for a location's listing: `locations` asks for the locations
# themselves; a restore point's copies wait less, and hardly at all for a location whose last
# listing failed (it answers "not known now" while a listing goes on in the background).
LISTING_WAIT = 8.0
COPIES_WAIT = 2.0
COPIES_WAIT_WHEN_DOWN = 0.5


@dataclass(frozen=True, slots=True)
class LocationState:
    """A location as it answers now: its copies, or why it cannot be read."""

    name: str
    kind: str  # LOCAL | FOLDER | S3
    encrypted: bool
    reachable: bool
    problem: str | None
    copies: tuple[RemoteCopy, ...]


@dataclass(frozen=True, slots=True)
class CopiesOf:
    """A restore point's copies at the locations that answered, and the locations that did not
    (whether those hold one is not known now)."""

    copies: tuple[RemoteCopy, ...]
    unknown_at: tuple[str, ...]


class LocationService:
    def __init__(
        self,
        *,
        stores: Mapping[str, LocationStore],
        local_copies: LocalCopyService,
        folder: LocalCopyFolder,
        keyring: Keyring,
        runner: OperationRunner,
    ) -> None:
        self._stores = dict(stores)
        self._deleted_listeners: list[Callable[[str], Awaitable[None]]] = []
        self._listings = {name: ListingCache(name, store.list) for name, store in self._stores.items()}
        self._local = local_copies
        encryption = CopyEncryption(folder, keyring)  # as the local copies encrypt and check theirs
        self._uploads = LocationUpload(
            local_copies=local_copies,
            encryption=encryption,
            folder=folder,
            runner=runner,
            written=lambda name: self._listings[name].written(),
        )
        self._fetches = LocationFetch(local_copies=local_copies, encryption=encryption, folder=folder, runner=runner)

    @property
    def names(self) -> builtins.list[str]:
        return [LOCAL, *self._stores]

    # -- reading ----------------------------------------------------------------------------

    async def list(self) -> list[LocationState]:
        """Every location, the built-in `local` first, each listed now (in parallel)."""
        return list(await asyncio.gather(self._state_of_local(), *(self._state(n, LISTING_WAIT) for n in self._stores)))

    async def get(self, name: str) -> LocationState | None:
        if name == LOCAL:
            return await self._state_of_local()
        return await self._state(name, LISTING_WAIT) if name in self._stores else None

    async def last_known(self, name: str) -> LocationState | None:
        """A location as its last listing found it (listed now only when it never was): for a
        copy's `location`, which a query asks for each copy it lists."""
        if name in self._listings and (latest := self._listings[name].latest) is not None:
            return self._of_listing(name, latest)
        return await self.get(name)

    async def copies_of(self, point_ids: Sequence[str]) -> builtins.list[CopiesOf]:
        """Every copy of each restore point, at every location that answers within a short
        while; the others are named as not known now."""
        states = await asyncio.gather(
            self._state_of_local(), *(self._state(n, self._copies_wait(n)) for n in self._stores)
        )
        every, late = await self._details([copy for state in states for copy in state.copies], COPIES_WAIT)
        unknown = tuple(sorted({state.name for state in states if not state.reachable} | late))
        return [
            CopiesOf(tuple(copy for copy in every if copy.restore_point_id == point_id), unknown)
            for point_id in point_ids
        ]

    async def restore_point_ids_at(self, name: str, *, field: str = "hasCopyAt") -> frozenset[str]:
        """The ids of the restore points with a copy at this location now (NOT_FOUND for an
        unknown name; LOCATION_UNAVAILABLE when it cannot be listed: never an empty answer
        that would look like "no copies there")."""
        state = await self.get(name)
        if state is None:
            raise NotFound(f"no location named {name!r}; the locations are: {', '.join(self.names)}", field=field)
        if not state.reachable:
            raise LocationUnreachable(f"location {name!r} cannot be listed now: {state.problem}", field=field)
        copies = await self.details(state.copies)
        if any(not copy.detailed for copy in copies):
            raise LocationUnreachable(f"location {name!r} stopped answering while it was read", field=field)
        return frozenset(copy.restore_point_id for copy in copies if copy.restore_point_id is not None)

    async def details(self, copies: Sequence[RemoteCopy]) -> builtins.list[RemoteCopy]:
        """The copies with their restore point ids read (S3: a HEAD per object not seen before),
        in the same order; a location that stops answering leaves its copies as they were."""
        return (await self._details(copies, LISTING_WAIT))[0]

    async def _details(self, copies: Sequence[RemoteCopy], wait: float) -> tuple[builtins.list[RemoteCopy], set[str]]:
        """`details`, waiting at most `wait` seconds; also the locations that did not answer."""
        by_location: dict[str, builtins.list[RemoteCopy]] = {}
        for copy in copies:
            if not copy.detailed:
                by_location.setdefault(copy.location, []).append(copy)
        if not by_location:
            return list(copies), set()

        async def read(location: str, some: builtins.list[RemoteCopy]) -> builtins.list[RemoteCopy] | None:
            try:
                return await asyncio.to_thread(self._stores[location].details, some)
            except LocationUnavailable:
                return None

        tasks = {loc: asyncio.ensure_future(read(loc, some)) for loc, some in by_location.items()}
        await asyncio.wait(tasks.values(), timeout=wait)  # the late ones go on, their HEADs cached
        known: dict[str, RemoteCopy] = {}
        late: set[str] = set()
        for location, task in tasks.items():
            filled = task.result() if task.done() else None
            if filled is None:
                late.add(location)
            else:
                known.update((copy.id, copy) for copy in filled)
        return [known.get(copy.id, copy) for copy in copies], late

    async def get_copy(self, remote_copy_id_: str) -> RemoteCopy | None:
        parsed = parse_remote_copy_id(remote_copy_id_)
        if parsed is None:
            return None
        location, name = parsed
        if location == LOCAL:
            copy = await self._local.get(copy_id(name))
            return _from_local(copy) if copy else None
        store = self._stores.get(location)
        if store is None:
            return None
        try:
            return await asyncio.to_thread(store.stat, name)
        except LocationUnavailable as error:
            raise LocationUnreachable(error.message, field="id") from None

    async def _state(self, name: str, wait: float) -> LocationState:
        return self._of_listing(name, await self._listings[name].read(wait=wait))

    def _of_listing(self, name: str, listing: Listing) -> LocationState:
        store = self._stores[name]
        if listing.copies is None:
            return LocationState(name, store.kind, store.encrypt, False, listing.problem, ())
        return LocationState(name, store.kind, store.encrypt, True, None, listing.copies)

    def _copies_wait(self, name: str) -> float:
        latest = self._listings[name].latest
        return COPIES_WAIT_WHEN_DOWN if latest is not None and latest.copies is None else COPIES_WAIT

    async def abort_unfinished(self) -> None:
        """Abort the uploads a crash cut off at every location (start-up; best effort, in the
        background: a location that does not answer delays nothing, and is cleaned at next use)."""

        async def one(name: str, store: LocationStore) -> None:
            try:
                await asyncio.to_thread(store.abort_unfinished)
            except Exception:
                log.exception("location %s: could not look for uploads a stopped server left", name)

        await asyncio.gather(*(one(name, store) for name, store in self._stores.items()))

    async def _state_of_local(self) -> LocationState:
        copies = await self._local.list()
        return LocationState(LOCAL, "LOCAL", False, True, None, tuple(_from_local(c) for c in copies))

    # -- delete -----------------------------------------------------------------------------

    async def delete(self, remote_copy_id_: str) -> str:
        """Delete a copy at a location (at `local`: the local copy itself)."""
        location, name = self._parse(remote_copy_id_, field="id")
        if location == LOCAL:
            await self._local.delete(copy_id(name))
            return remote_copy_id_
        store = self._store(location, field="id")
        try:
            deleted = await asyncio.to_thread(store.delete, name)
            self._listings[location].written()
        except LocationUnavailable as error:
            raise LocationUnreachable(error.message, field="id") from None
        if not deleted:
            raise NotFound(f"no copy {name!r} at location {location!r}", field="id")
        for listener in self._deleted_listeners:
            await listener(remote_copy_id_)
        return remote_copy_id_

    def on_copy_deleted(self, listener: Callable[[str], Awaitable[None]]) -> None:
        """Call `listener` with the id of each remote copy deleted here (a deliberate delete:
        not a copy gone missing)."""
        self._deleted_listeners.append(listener)

    # -- upload (upload.py) -------------------------------------------------------------------

    async def start_upload(self, local_copy_id: str, location: str, *, requested_by: str | None) -> Operation:
        """Start streaming a local copy to a location; it is checked there before it counts."""
        if location == LOCAL:
            raise InvalidInput("the copy is already at location 'local' (the local copies folder)", field="location")
        store = self._store(location, field="location")
        return await self._uploads.start(local_copy_id, location, store, requested_by=requested_by)

    async def upload_within(self, ctx: OperationContext, copy: LocalCopy, location: str) -> str:
        """Upload a staging copy (LocalCopyService.export_staging; nothing else can name or
        delete it, so nothing is held) as a step of another operation (a schedule's run); the
        name it has at the location. OperationFailed (or NOT_FOUND for an unknown location)."""
        store = self._store(location, field="copyToLocations")
        return await self._uploads.within(ctx, copy, store)

    # -- fetch (fetch.py) ---------------------------------------------------------------------

    async def start_fetch(self, remote_copy_id_: str, *, requested_by: str | None) -> Operation:
        """Start streaming a remote copy into the local copies folder, checked, ready to import."""
        location, name = self._parse(remote_copy_id_, field="remoteCopyId")
        if location == LOCAL:
            raise InvalidInput("the copy is already in the local copies folder", field="remoteCopyId")
        store = self._store(location, field="remoteCopyId")
        return await self._fetches.start(location, name, store, requested_by=requested_by)

    # -- helpers ----------------------------------------------------------------------------

    def _parse(self, remote_copy_id_: str, *, field: str) -> tuple[str, str]:
        parsed = parse_remote_copy_id(remote_copy_id_)
        if parsed is None:
            raise NotFound(f"no remote copy with id {quoted(remote_copy_id_)}", field=field)
        return parsed

    def _store(self, location: str, *, field: str) -> LocationStore:
        store = self._stores.get(location)
        if store is None:
            known = ", ".join(repr(n) for n in self.names)
            raise NotFound(f"no location {quoted(location)} (the locations are {known})", field=field)
        return store


def _from_local(copy: LocalCopy) -> RemoteCopy:
    return RemoteCopy(
        id=remote_copy_id(LOCAL, copy.file_name),
        location=LOCAL,
        file_name=copy.file_name,
        size=copy.size,
        modified_at=copy.modified_at,
        encrypted=copy.encrypted,
        restore_point_id=copy.restore_point_id,
        problem=copy.problem,
        server_name=copy.server_name,
    )
