"""Importing a local copy as a restore point: an encrypted copy is decrypted first (streaming,
into a hidden temporary ZIP); the ZIP is verified in full before anything is stored, and a copy
of a restore point this server holds already imports nothing."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from pathlib import Path

from server.model.errors import InvalidArchive, OperationErrorCode, OperationFailed
from server.model.ids import new_id
from server.model.manifests import manifest_checksum
from server.model.names import is_our_restore_point_id
from server.model.records import EntryKind, LocalCopy, Operation, OperationKind, RestorePoint, RestorePointOrigin
from server.operations.holds import Held
from server.operations.live import OperationContext
from server.operations.runner import OperationRunner
from server.services.local_copies.delete import hold_copy
from server.services.local_copies.encryption import CopyEncryption
from server.services.restore_points import RestorePointService
from server.storage.blobs.content_store import ContentStore
from server.storage.encryption import Cancelled, EncryptedDamaged, KeyMissing
from server.storage.full import files_full
from server.storage.local_copy.folder import LocalCopyFolder
from server.storage.local_copy.format import CopyCancelled, LocalCopyReader, open_local_copy


class CopyImport:
    """Imports local copies as restore points."""

    def __init__(
        self,
        *,
        folder: LocalCopyFolder,
        store: ContentStore,
        runner: OperationRunner,
        restore_points: RestorePointService,
        encryption: CopyEncryption,
    ) -> None:
        self._folder = folder
        self._store = store
        self._runner = runner
        self._restore_points = restore_points
        self._encryption = encryption

    async def start(self, local_copy_id: str, *, requested_by: str | None) -> Operation:
        """Start importing a local copy as a restore point (nothing is written until all checks pass)."""
        copy, hold = await hold_copy(self._folder, self._runner.holds, local_copy_id)
        # An encrypted copy's problem (a missing key, damage) is the operation's error: KEY_MISSING.
        if copy.problem is not None and not copy.encrypted:
            hold.release()
            raise InvalidArchive(f"{copy.file_name}: {copy.problem}", field="localCopyId")

        async def job(ctx: OperationContext) -> None:
            if copy.encrypted:
                await self._import_encrypted(ctx, copy)
            else:
                await self._import(ctx, copy)

        return await self._runner.submit(
            OperationKind.IMPORT_LOCAL_COPY, job, requested_by=requested_by, local_copy_id=copy.id, holds=[hold]
        )

    async def _import_encrypted(self, ctx: OperationContext, copy: LocalCopy) -> None:
        """Decrypt (streaming, every age chunk authenticated) into a hidden temporary ZIP, then
        import that like a plain copy; the plain text never gets a name of its own."""
        path = self._folder.path_of(copy)
        ctx.log(f"{copy.file_name} is encrypted (age): decrypting it to check and import it.")
        try:
            plain = await ctx.run_blocking(
                lambda on_bytes, stop: self._encryption.decrypt_to_temp(path, on_bytes, stop),
                total=copy.size,
                start=0.0,
                end=0.02,
                stage="Decrypting",
            )
        except KeyMissing as error:
            raise OperationFailed(OperationErrorCode.KEY_MISSING, f"{copy.file_name}: {error.message}") from None
        except EncryptedDamaged as error:
            raise OperationFailed(OperationErrorCode.INVALID_ARCHIVE, f"{copy.file_name}: {error.message}") from None
        except Cancelled:
            ctx.checkpoint()
            raise
        except FileNotFoundError:
            raise OperationFailed(OperationErrorCode.NOT_FOUND, f"{copy.file_name} is gone") from None
        except OSError as error:
            if (full := files_full(error, f"the local copies folder ({self._folder.root})")) is not None:
                raise full from None
            raise
        try:
            ctx.log("Decrypted; every age chunk authenticated.")
            await self._import(ctx, copy, plain)
        finally:
            await asyncio.to_thread(plain.unlink, missing_ok=True)

    async def _import(self, ctx: OperationContext, copy: LocalCopy, plain: Path | None = None) -> None:
        path = plain or self._folder.path_of(copy)
        try:
            reader = await asyncio.to_thread(open_local_copy, path, self._folder.limits)
        except InvalidArchive as error:
            raise OperationFailed(OperationErrorCode.INVALID_ARCHIVE, f"{copy.file_name}: {error.message}") from None
        except OSError as error:
            raise OperationFailed(OperationErrorCode.NOT_FOUND, f"{copy.file_name} cannot be opened: {error}") from None
        try:
            await self._import_from(ctx, copy, reader)
        finally:
            await asyncio.to_thread(reader.close)

    async def _import_from(self, ctx: OperationContext, copy: LocalCopy, reader: LocalCopyReader) -> None:
        manifest = reader.manifest
        meta = manifest.restore_point
        total = manifest.total_size
        ctx.log(f'{copy.file_name}: restore point {meta["id"]} "{meta["label"]}", {len(manifest.entries)} items.')
        try:
            await ctx.run_blocking(
                lambda on_bytes, stop: reader.verify(on_bytes, stop),
                total=total,
                start=0.02,
                end=0.45,
                stage="Verifying",
            )
        except InvalidArchive as error:
            raise OperationFailed(OperationErrorCode.INVALID_ARCHIVE, f"{copy.file_name}: {error.message}") from None
        except CopyCancelled:
            ctx.checkpoint()
            raise
        if manifest_checksum(manifest.entries) != meta["checksum"]:
            raise OperationFailed(
                OperationErrorCode.INVALID_ARCHIVE,
                f"{copy.file_name}: the manifest's checksum does not match its entries",
            )
        ctx.log("Every entry's size and SHA-256 match the manifest.")

        point_id = str(meta["id"])
        if is_our_restore_point_id(point_id):  # held before it is looked up: the point it may name stays
            await ctx.hold_existing(Held.RESTORE_POINT, point_id)
        existing = await self._restore_points.get(point_id) if is_our_restore_point_id(point_id) else None
        if existing is not None and existing.checksum == meta["checksum"]:
            # Chosen behaviour: importing a copy of a restore point we hold is a no-op that
            # points at the existing one, so re-importing never duplicates history.
            ctx.set_subject(restore_point_id=existing.id)
            ctx.log(f"Restore point {existing.id} is already here with the same content; nothing imported.")
            return
        if existing is not None or not is_our_restore_point_id(point_id):
            point_id = _fresh_id()
            ctx.log(f"The copy's id is taken or foreign; importing as {point_id}.")

        pinned: list[str] = []
        try:
            stored = await self._store_members(ctx, reader, pinned, total)
            point = RestorePoint(
                id=point_id,
                label=str(meta["label"]),
                note=meta.get("note"),
                origin=RestorePointOrigin.IMPORTED,
                created_at=meta["createdAt"],
                created_by=meta.get("createdBy"),
                size_bytes=total,
                stored_bytes=stored,
                item_count=len(manifest.entries),
                checksum=str(meta["checksum"]),
                server_version=str(meta.get("serverVersion") or "unknown"),
                items_only=meta.get("itemsOnly"),  # applied as its items, like the one exported
            )
            # The test delay (BACKUPS_TEST_ENTRY_DELAY) here, between looking for the restore
            # point and saving it, lets tests run two imports of one copy into each other.
            await ctx.pace()
            ctx.progress(0.97, "Saving restore point")
            taken = await self._restore_points.record(point, manifest.entries, pinned)
            if taken is not None and taken.checksum != point.checksum:
                point = dataclasses.replace(point, id=_fresh_id())
                ctx.log(f"Restore point {taken.id} was recorded meanwhile with other content; importing as {point.id}.")
                taken = await self._restore_points.record(point, manifest.entries, pinned)
        except BaseException:
            self._store.unpin(pinned)
            await asyncio.shield(self._restore_points.collect(pinned))
            raise
        if taken is not None:
            # Another import of this copy saved it since we looked: point at that one, as above.
            self._store.unpin(pinned)
            await asyncio.shield(self._restore_points.collect(pinned))
            ctx.set_subject(restore_point_id=taken.id)
            ctx.log(f"Restore point {taken.id} was imported meanwhile with the same content; nothing imported.")
            return
        ctx.set_subject(restore_point_id=point.id)
        ctx.log(f"Imported as restore point {point.id}: {stored} bytes newly stored.")

    async def _store_members(
        self, ctx: OperationContext, reader: LocalCopyReader, pinned: list[str], total: int
    ) -> int:
        def store_all(on_bytes: Callable[[int], None], should_stop: Callable[[], bool]) -> int:
            stored = 0
            for entry in reader.manifest.entries:
                if entry.kind is EntryKind.DIRECTORY:
                    continue
                if should_stop():
                    raise CopyCancelled("import cancelled")
                with reader.open_member(entry) as member:
                    digest, size, new = self._store.put_stream(member, on_bytes=on_bytes)
                pinned.append(digest)
                stored += size if new else 0
            return stored

        try:
            return await ctx.run_blocking(store_all, total=total, start=0.45, end=0.95, stage="Storing content")
        except InvalidArchive as error:  # the file changed since it was verified
            raise OperationFailed(OperationErrorCode.INVALID_ARCHIVE, error.message) from None
        except OSError as error:
            if (full := files_full(error, f"the content store ({self._store.root})")) is not None:
                raise full from None
            raise
        except CopyCancelled:
            ctx.checkpoint()
            raise


def _fresh_id() -> str:
    return new_id("rp")
