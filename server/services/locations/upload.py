"""Uploading a local copy to a location: streamed out and read back there (its SHA-256
compared) before it counts. A plain copy sent to a location that keeps copies encrypted is
encrypted first, into a hidden temporary file, which is what is sent and checked; the local
copy stays as it is."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from pathlib import Path

from server.model.errors import InvalidArchive, OperationErrorCode, OperationFailed
from server.model.names import safe_copy_name
from server.model.records import LocalCopy, Operation, OperationKind
from server.operations.live import OperationContext
from server.operations.runner import OperationRunner
from server.services.local_copies.encryption import CopyEncryption
from server.services.local_copies.service import LocalCopyService
from server.storage.encryption import SUFFIX
from server.storage.encryption import Cancelled as EncryptionCancelled
from server.storage.full import files_full
from server.storage.local_copy.folder import LocalCopyFolder
from server.storage.locations.store import CHUNK, CopyMismatch, LocationStore, LocationUnavailable, TransferCancelled


class LocationUpload:
    """Sends local copies to locations."""

    def __init__(
        self,
        *,
        local_copies: LocalCopyService,
        encryption: CopyEncryption,
        folder: LocalCopyFolder,
        runner: OperationRunner,
        written: Callable[[str], None],
    ) -> None:
        self._local = local_copies
        self._encryption = encryption
        self._folder = folder
        self._runner = runner
        self._written = written  # a location was written to: its next listing asks again

    async def start(
        self, local_copy_id: str, location: str, store: LocationStore, *, requested_by: str | None
    ) -> Operation:
        """Start streaming a local copy to a location; it is checked there before it counts."""
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

    async def within(self, ctx: OperationContext, copy: LocalCopy, store: LocationStore) -> str:
        """Upload a staging copy as a step of another operation (a schedule's run); the name it
        has at the location. Raises OperationFailed."""
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

        def encrypt(on_bytes: Callable[[int], None], should_stop: Callable[[], bool]) -> Path:
            return self._encryption.encrypt_to_temp(source, on_bytes, should_stop)

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
                    server_name=copy.server_name,
                    on_bytes=on_bytes,
                    should_stop=should_stop,
                )

            try:
                name = await ctx.run_blocking(send, total=size, start=at + 0.1, end=0.99, stage="Uploading")
            finally:
                self._written(store.name)
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


def _sha256(path: Path, on_bytes: Callable[[int], None], should_stop: Callable[[], bool]) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            if should_stop():
                raise TransferCancelled("upload cancelled")
            digest.update(chunk)
            on_bytes(len(chunk))
    return digest.hexdigest()
