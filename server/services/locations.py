"""Backup locations: what copies each holds now, uploading a local copy there, fetching one back.

Listing asks the location every time (a copy another server put there shows up, one deleted
by hand disappears), but waits for it only a bounded time (location_listing.py): a location
that does not answer in time is shown as not reachable now, and slows no query. An upload streams a local copy out and checks what arrived; a fetch
streams a remote copy into the local copies folder, checks it (the SHA-256 recorded at upload
when there is one, then the ZIP in full) and leaves it there for importLocalCopy.
"""

from __future__ import annotations

import asyncio
import builtins
import hashlib
import logging
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from server.model.errors import (
    InvalidArchive,
    InvalidInput,
    LocationUnreachable,
    NotFound,
    OperationErrorCode,
    OperationFailed,
    quoted,
)
from server.model.names import COPY_NAME_MAX_BYTES, safe_copy_name
from server.model.records import LocalCopy, Operation, OperationKind, RemoteCopy
from server.operations.live import OperationContext
from server.operations.runner import OperationRunner
from server.services.copy_naming import BeforeNaming
from server.services.local_copies import LocalCopyService
from server.services.location_listing import Listing, ListingCache
from server.storage.durability import TEMP_SUFFIX, atomic_write, temp_prefix
from server.storage.encryption import SUFFIX, KeyMissing, Keyring, is_encrypted_name
from server.storage.encryption import Cancelled as EncryptionCancelled
from server.storage.full import files_full
from server.storage.local_copy.folder import LocalCopyFolder, copy_id
from server.storage.locations.store import (
    CHUNK,
    CopyMismatch,
    LocationStore,
    LocationUnavailable,
    TransferCancelled,
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
        self._listings = {name: ListingCache(name, store.list) for name, store in self._stores.items()}
        self._local = local_copies
        self._folder = folder
        self._keyring = keyring
        self._runner = runner

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
        return remote_copy_id_

    # -- upload -----------------------------------------------------------------------------

    async def start_upload(self, local_copy_id: str, location: str, *, requested_by: str | None) -> Operation:
        """Start streaming a local copy to a location; it is checked there before it counts."""
        if location == LOCAL:
            raise InvalidInput("the copy is already at location 'local' (the local copies folder)", field="location")
        store = self._store(location, field="location")
        copy, hold = await self._local.hold(local_copy_id)
        if copy.problem is not None:
            hold.release()
            raise InvalidArchive(f"{copy.file_name}: {copy.problem}", field="localCopyId")

        async def job(ctx: OperationContext) -> None:
            await self._upload(ctx, copy, store)

        return await self._runner.submit(
            OperationKind.UPLOAD_TO_LOCATION,
            job,
            requested_by=requested_by,
            local_copy_id=copy.id,
            restore_point_id=copy.restore_point_id,
            params={"location": location},
            holds=[hold],
        )

    async def upload_within(self, ctx: OperationContext, copy: LocalCopy, location: str) -> str:
        """Upload a staging copy (LocalCopyService.export_staging; nothing else can name or
        delete it, so nothing is held) as a step of another operation (a schedule's run); the
        name it has at the location. OperationFailed (or NOT_FOUND for an unknown location)."""
        store = self._store(location, field="copyToLocations")
        return await self._upload(ctx, copy, store)

    async def _upload(self, ctx: OperationContext, copy: LocalCopy, store: LocationStore) -> str:
        if store.encrypt and not copy.encrypted:
            return await self._upload_encrypted(ctx, copy, store)
        name = safe_copy_name(copy.file_name)  # a copy put in the folder by hand may have any name
        return await self._send(ctx, copy, store, self._local.path_of(copy), name, copy.size, 0.0)

    async def _upload_encrypted(self, ctx: OperationContext, copy: LocalCopy, store: LocationStore) -> str:
        """A plain copy to an encrypting location: encrypted first into a hidden temporary
        file (streaming), which is what is sent and checked; the local copy stays as it is."""
        ctx.log(f"Location {store.name!r} keeps copies encrypted: encrypting {copy.file_name} (age) first.")
        source = self._local.path_of(copy)
        keyring = self._keyring

        def encrypt(on_bytes: Callable[[int], None], should_stop: Callable[[], bool]) -> Path:
            fd, name = tempfile.mkstemp(dir=self._folder.root, prefix=temp_prefix(copy.file_name), suffix=TEMP_SUFFIX)
            temp = Path(name)
            try:
                with os.fdopen(fd, "wb") as out:
                    keyring.encrypt(source, out, on_bytes, should_stop)
            except BaseException:
                temp.unlink(missing_ok=True)
                raise
            return temp

        try:
            temp = await ctx.run_blocking(encrypt, total=copy.size, start=0.0, end=0.2, stage="Encrypting")
        except EncryptionCancelled:
            ctx.checkpoint()
            raise
        except FileNotFoundError:
            raise OperationFailed(OperationErrorCode.NOT_FOUND, f"local copy {copy.file_name} is gone") from None
        except OSError as error:
            if (full := files_full(error, f"the local copies folder ({self._folder.root})")) is not None:
                raise full from None
            raise
        try:
            size = await asyncio.to_thread(lambda: temp.stat().st_size)
            return await self._send(ctx, copy, store, temp, safe_copy_name(copy.file_name + SUFFIX), size, 0.2)
        finally:
            await asyncio.to_thread(temp.unlink, missing_ok=True)

    async def _send(
        self,
        ctx: OperationContext,
        copy: LocalCopy,
        store: LocationStore,
        path: Path,
        file_name: str,
        size: int,
        at: float,
    ) -> str:
        ctx.log(f"Uploading {file_name} ({size} bytes) to location {store.name!r}.")
        try:
            sha256 = await ctx.run_blocking(
                lambda on_bytes, stop: _sha256(path, on_bytes, stop),
                total=size,
                start=at,
                end=at + 0.1,
                stage="Reading the local copy",
            )
            ctx.checkpoint()

            def send(on_bytes: Callable[[int], None], should_stop: Callable[[], bool]) -> str:
                return store.upload(
                    path,
                    file_name,
                    sha256=sha256,
                    restore_point_id=copy.restore_point_id,
                    on_bytes=on_bytes,
                    should_stop=should_stop,
                )

            try:
                name = await ctx.run_blocking(send, total=size, start=at + 0.1, end=0.99, stage="Uploading")
            finally:
                self._listings[store.name].written()
        except TransferCancelled:
            ctx.checkpoint()
            raise
        except LocationUnavailable as error:
            raise OperationFailed(
                OperationErrorCode.LOCATION_UNAVAILABLE, f"{error.message}; nothing was left there"
            ) from None
        except CopyMismatch as error:
            raise OperationFailed(OperationErrorCode.COPY_CHECK_FAILED, f"{error}; nothing was kept there") from None
        except FileNotFoundError:
            raise OperationFailed(OperationErrorCode.NOT_FOUND, f"local copy {copy.file_name} is gone") from None
        ctx.log(f"Uploaded as {name} and read back: {size} bytes, SHA-256 {sha256}.")
        return name

    # -- fetch ------------------------------------------------------------------------------

    async def start_fetch(self, remote_copy_id_: str, *, requested_by: str | None) -> Operation:
        """Start streaming a remote copy into the local copies folder, checked, ready to import."""
        location, name = self._parse(remote_copy_id_, field="remoteCopyId")
        if location == LOCAL:
            raise InvalidInput("the copy is already in the local copies folder", field="remoteCopyId")
        store = self._store(location, field="remoteCopyId")
        try:
            remote = await asyncio.to_thread(store.stat, name)
        except LocationUnavailable as error:
            raise LocationUnreachable(error.message, field="remoteCopyId") from None
        if remote is None:
            raise NotFound(f"no copy {name!r} at location {location!r}", field="remoteCopyId")

        async def job(ctx: OperationContext) -> None:
            await self._fetch(ctx, remote, store)

        return await self._runner.submit(
            OperationKind.FETCH_FROM_LOCATION,
            job,
            requested_by=requested_by,
            restore_point_id=remote.restore_point_id,
            params={"location": location, "remoteCopyId": remote.id},
        )

    async def _fetch(self, ctx: OperationContext, remote: RemoteCopy, store: LocationStore) -> None:
        ctx.log(f"Fetching {remote.file_name} ({remote.size} bytes) from location {store.name!r}.")
        before_naming = self._local.naming.recorder(ctx)  # its name is stored before it is given
        try:
            placed = await ctx.run_blocking(
                lambda on_bytes, stop: self._receive(remote, store, on_bytes, stop, before_naming),
                total=remote.size,
                start=0.0,
                end=0.9,
                stage="Fetching",
            )
        except TransferCancelled:
            ctx.checkpoint()
            raise
        except LocationUnavailable as error:
            raise OperationFailed(
                OperationErrorCode.LOCATION_UNAVAILABLE, f"{error.message}; nothing was kept"
            ) from None
        except KeyMissing as error:
            raise OperationFailed(
                OperationErrorCode.KEY_MISSING,
                f"{remote.file_name} at location {store.name!r} is {error.message}; nothing was kept",
            ) from None
        except EncryptionCancelled:
            ctx.checkpoint()
            raise
        except (CopyMismatch, InvalidArchive) as error:
            detail = error.message if isinstance(error, InvalidArchive) else str(error)
            raise OperationFailed(
                OperationErrorCode.INVALID_ARCHIVE,
                f"{remote.file_name} at location {store.name!r}: {detail}; nothing was kept",
            ) from None
        except FileNotFoundError:
            raise OperationFailed(
                OperationErrorCode.NOT_FOUND, f"{remote.file_name} is no longer at location {store.name!r}"
            ) from None
        except OSError as error:
            if (full := files_full(error, f"the local copies folder ({self._folder.root})")) is not None:
                raise full from None
            raise
        await self._local.naming.named(ctx)
        ctx.set_subject(local_copy_id=copy_id(placed))
        if safe_copy_name(remote.file_name) != remote.file_name:
            ctx.log(
                f"Its name here is {placed!r}: a local copy's name has no control characters and at most "
                f"{COPY_NAME_MAX_BYTES} bytes."
            )
        ctx.log(f"Fetched and checked as local copy {placed}; import it with importLocalCopy.")

    def _receive(
        self,
        remote: RemoteCopy,
        store: LocationStore,
        on_bytes: Callable[[int], None],
        should_stop: Callable[[], bool],
        before_naming: BeforeNaming,
    ) -> str:
        digest, size = hashlib.sha256(), 0

        class Hashing:
            def __init__(self, file: object) -> None:
                self.file = file

            def write(self, data: bytes) -> None:
                nonlocal size
                digest.update(data)
                size += len(data)
                self.file.write(data)  # type: ignore[attr-defined]

        local_name = safe_copy_name(remote.file_name)  # a name at a location may not be one here
        with atomic_write(self._folder.root / local_name) as pending:
            store.download(remote.file_name, Hashing(pending.file), on_bytes=on_bytes, should_stop=should_stop)  # type: ignore[arg-type]
            pending.sync()
            if size != remote.size:
                raise CopyMismatch(f"{size} bytes arrived, the location lists {remote.size}")
            if remote.sha256 is not None and digest.hexdigest() != remote.sha256:
                raise CopyMismatch(
                    "its SHA-256 is not the one recorded when it was uploaded (changed or damaged there)"
                )
            # An encrypted copy is decrypted (into a temporary file) to be checked in full: one
            # this server has no key for is refused here (KEY_MISSING), before it takes a name.
            self._local.verify_copy(pending.temp, encrypted=is_encrypted_name(local_name))
            name = self._folder.place(pending.temp, local_name, before_naming)  # exclusively: never over a copy
            pending.placed_at(self._folder.root / name)
        return name

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
    )


def _sha256(path: Path, on_bytes: Callable[[int], None], should_stop: Callable[[], bool]) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            if should_stop():
                raise TransferCancelled("upload cancelled")
            digest.update(chunk)
            on_bytes(len(chunk))
    return digest.hexdigest()
