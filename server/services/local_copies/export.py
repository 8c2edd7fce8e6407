"""Exporting a restore point to a ZIP in the local copies folder: a user's copy (plain, or
age-encrypted as `.zip.age`), or a staging copy that a schedule's run sends to locations. What
is written is read back and checked before it gets a name."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from server.model.errors import InvalidArchive, OperationErrorCode, OperationFailed
from server.model.manifests import manifest_checksum
from server.model.records import LocalCopy, Operation, OperationKind, RestorePoint
from server.operations.live import OperationContext
from server.operations.runner import OperationRunner
from server.services.local_copies.encryption import CopyEncryption
from server.services.local_copies.naming import CopyNaming
from server.services.restore_points import RestorePointService
from server.storage.blobs.content_store import ContentStore
from server.storage.full import files_full
from server.storage.local_copy.folder import STAGING_FOLDER, LocalCopyFolder, copy_id
from server.storage.local_copy.format import ContentMismatch, CopyCancelled, read_manifest, write_local_copy


class CopyExport:
    """Writes restore points to copies in the local copies folder (or its staging subfolder)."""

    def __init__(
        self,
        *,
        folder: LocalCopyFolder,
        store: ContentStore,
        runner: OperationRunner,
        restore_points: RestorePointService,
        naming: CopyNaming,
        encryption: CopyEncryption,
        server_name: str | None = None,
    ) -> None:
        self._server_name = server_name  # written into each copy's manifest and file name
        self._folder = folder
        self._staging: LocalCopyFolder | None = None  # made on first use: most servers never stage
        self._store = store
        self._runner = runner
        self._restore_points = restore_points
        self._naming = naming
        self._encryption = encryption

    async def start(self, point_id: str, *, requested_by: str | None, encrypt: bool = False) -> Operation:
        """Start writing a restore point to a ZIP in the local copies folder (age-encrypted:
        `.zip.age`, for the server's identity and every recovery recipient)."""
        point, hold = await self._restore_points.hold(point_id, field="restorePointId")
        try:
            await self._restore_points.refuse_if_damaged(point.id)
        except BaseException:
            hold.release()
            raise

        async def job(ctx: OperationContext) -> None:
            await self._export(ctx, point, encrypt)

        return await self._runner.submit(
            OperationKind.EXPORT_RESTORE_POINT, job, requested_by=requested_by, restore_point_id=point.id, holds=[hold]
        )

    async def staging(self, ctx: OperationContext, point: RestorePoint) -> LocalCopy:
        """Write a restore point's copy as a step of another operation (a schedule's run, which
        holds the restore point it made), to be sent elsewhere: in the staging subfolder, never
        listed as a local copy, removed at start-up if a crash leaves it; `remove_staging` after."""
        if self._staging is None:
            root = self._folder.root / STAGING_FOLDER
            self._staging = await asyncio.to_thread(LocalCopyFolder, root, self._folder.limits, self._folder.keyring)
        staging = self._staging
        name = await self._export(ctx, point, staging=staging)
        copy = await asyncio.to_thread(staging.get, copy_id(name))
        if copy is None:
            raise OperationFailed(OperationErrorCode.NOT_FOUND, f"the staging copy {name} is gone")
        return copy

    async def remove_staging(self, copy: LocalCopy) -> None:
        """Remove a copy `staging` made."""

        def remove() -> None:
            Path(copy.path).unlink(missing_ok=True)
            if self._staging is not None:
                self._staging.list()  # which also forgets what it knew of files now gone

        await asyncio.to_thread(remove)

    async def _export(
        self,
        ctx: OperationContext,
        point: RestorePoint,
        encrypt: bool = False,
        *,
        staging: LocalCopyFolder | None = None,
    ) -> str:
        folder = staging if staging is not None else self._folder
        # A user's copy: its name is stored before it is given (see naming.py).
        before_naming = None if staging is not None else self._naming.recorder(ctx)
        entries = await self._restore_points.entries(point.id)
        name = await asyncio.to_thread(
            folder.new_name,
            point.created_at,
            point.label,
            point.id,
            encrypted=encrypt,
            server_name=self._server_name,
        )
        target = folder.root / name
        ctx.log(f"Writing {len(entries)} items ({point.size_bytes} bytes) to {name}.")
        if encrypt:
            ctx.log(f"Encrypting (age) to {', '.join(self._encryption.recipients_named())}.")
        await ctx.pace()

        def place(temp: Path) -> Path:
            nonlocal name
            # Checked before it gets a name: a copy that does not describe its restore point
            # in full must never appear as a good one.
            _check_written(temp, point, folder)
            if encrypt:  # the checked plain ZIP, encrypted file to file (streaming), then named
                name = self._encryption.encrypt_into_folder(temp, name, before_naming=before_naming)
                return folder.root / name
            name = folder.place(temp, name, before_naming)  # exclusively: a second export gets -2
            return folder.root / name

        def write(on_bytes: Callable[[int], None], should_stop: Callable[[], bool]) -> int:
            return write_local_copy(
                target,
                restore_point=point,
                entries=entries,
                open_blob=self._store.open,
                read_blob=self._store.read,
                on_bytes=on_bytes,
                should_stop=should_stop,
                limits=folder.limits,
                place=place,
                server_name=self._server_name,
            )

        try:
            size = await ctx.run_blocking(write, total=point.size_bytes, start=0.02, end=0.98, stage="Writing ZIP")
        except CopyCancelled:
            ctx.checkpoint()
            raise
        except (ContentMismatch, FileNotFoundError) as error:
            raise OperationFailed(
                OperationErrorCode.CONTENT_DAMAGED, f"the content store is damaged, nothing was written: {error}"
            ) from None
        except UnverifiedCopy as error:
            raise OperationFailed(OperationErrorCode.COPY_CHECK_FAILED, f"nothing was written: {error}") from None
        except OSError as error:
            if (full := files_full(error, f"the local copies folder ({self._folder.root})")) is not None:
                raise full from None
            raise
        if staging is not None:
            ctx.log(f"Staging copy {name} written: {size} bytes.")
            return name
        await self._naming.named(ctx)
        ctx.set_subject(local_copy_id=copy_id(name))
        ctx.log(f"Local copy {name} written: {size} bytes" + (" before encryption." if encrypt else "."))
        return name


class UnverifiedCopy(Exception):
    """A finished copy does not describe its restore point (it is removed, never shown)."""


def _check_written(path: Path, point: RestorePoint, folder: LocalCopyFolder) -> None:
    """Read back what an export wrote: the manifest must open and name every item of the
    restore point, with its checksum. (Each member's bytes were checked against its entry's
    SHA-256 while being written.)"""
    try:
        manifest = read_manifest(path, folder.limits)
    except (InvalidArchive, OSError) as error:
        raise UnverifiedCopy(f"the copy written cannot be read back: {getattr(error, 'message', error)}") from None
    meta = manifest.restore_point
    if len(manifest.entries) != point.item_count:
        raise UnverifiedCopy(
            f"the copy written lists {len(manifest.entries)} items, but restore point {point.id} "
            f"has {point.item_count}: its manifest in the database is incomplete"
        )
    if meta["id"] != point.id or manifest_checksum(manifest.entries) != point.checksum:
        raise UnverifiedCopy(
            f"the entries written do not match restore point {point.id}'s checksum: its manifest in "
            "the database is damaged"
        )
