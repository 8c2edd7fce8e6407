"""Fetching a copy from a location into the local copies folder: streamed in under a hidden
temporary name, checked (its size, the SHA-256 recorded at upload when there is one, then the
ZIP in full, an encrypted one decrypted to check it) and only then named, ready for
importLocalCopy. Its name is stored with the operation before it is given (naming.py)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable

from server.model.errors import (
    InvalidArchive,
    LocationUnreachable,
    NotFound,
    OperationErrorCode,
    OperationFailed,
)
from server.model.names import COPY_NAME_MAX_BYTES, safe_copy_name
from server.model.records import Operation, OperationKind, RemoteCopy
from server.operations.live import OperationContext
from server.operations.runner import OperationRunner
from server.services.local_copies.encryption import CopyEncryption
from server.services.local_copies.naming import BeforeNaming
from server.services.local_copies.service import LocalCopyService
from server.storage.durability import atomic_write
from server.storage.encryption import Cancelled as EncryptionCancelled
from server.storage.encryption import KeyMissing, is_encrypted_name
from server.storage.full import files_full
from server.storage.local_copy.folder import LocalCopyFolder, copy_id
from server.storage.locations.store import CopyMismatch, LocationStore, LocationUnavailable, TransferCancelled


class LocationFetch:
    """Brings copies at locations into the local copies folder."""

    def __init__(
        self,
        *,
        local_copies: LocalCopyService,
        encryption: CopyEncryption,
        folder: LocalCopyFolder,
        runner: OperationRunner,
    ) -> None:
        self._local = local_copies
        self._encryption = encryption
        self._folder = folder
        self._runner = runner

    async def start(self, location: str, name: str, store: LocationStore, *, requested_by: str | None) -> Operation:
        """Start streaming the copy `name` at a location into the local copies folder, checked,
        ready to import."""
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
            self._encryption.verify_copy(pending.temp, encrypted=is_encrypted_name(local_name))
            name = self._folder.place(pending.temp, local_name, before_naming)  # exclusively: never over a copy
            pending.placed_at(self._folder.root / name)
        return name
