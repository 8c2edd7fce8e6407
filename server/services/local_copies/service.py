"""Local copies: what the folder holds, and the jobs on them (export.py, importing.py,
upload.py, delete.py), with the encryption they share (encryption.py)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from server.model.errors import ConfirmationRequired
from server.model.records import LocalCopy, Operation, RestorePoint
from server.operations.holds import Hold
from server.operations.live import OperationContext
from server.operations.runner import OperationRunner
from server.services.local_copies.delete import delete_copy, hold_copy
from server.services.local_copies.encryption import CopyEncryption
from server.services.local_copies.export import CopyExport
from server.services.local_copies.importing import CopyImport
from server.services.local_copies.naming import CopyNaming
from server.services.local_copies.upload import CopyUpload
from server.services.restore_points import RestorePointService
from server.storage.blobs.content_store import ContentStore
from server.storage.encryption import Keyring, emergency_kit
from server.storage.local_copy.folder import LocalCopyFolder
from server.test_seams import StepControl

log = logging.getLogger(__name__)

# What exportEmergencyKit's `confirm` must say: the kit is the key to every encrypted copy.
EMERGENCY_KIT_CONFIRM = "EXPORT KEY"


class LocalCopyService:
    def __init__(
        self,
        *,
        folder: LocalCopyFolder,
        keyring: Keyring,
        store: ContentStore,
        runner: OperationRunner,
        restore_points: RestorePointService,
        max_upload_bytes: int,
        steps: StepControl | None = None,
        server_name: str | None = None,
    ) -> None:
        self._folder = folder
        self._runner = runner
        # Registered here, before the runner starts: it finishes exports and fetches a crash cut.
        self.naming = CopyNaming(folder=folder, runner=runner, steps=steps or StepControl())
        encryption = CopyEncryption(folder, keyring)
        self._keyring = keyring
        self._export = CopyExport(
            folder=folder,
            store=store,
            runner=runner,
            restore_points=restore_points,
            naming=self.naming,
            encryption=encryption,
            server_name=server_name,
        )
        self._import = CopyImport(
            folder=folder, store=store, runner=runner, restore_points=restore_points, encryption=encryption
        )
        self._upload = CopyUpload(folder=folder, encryption=encryption, max_upload_bytes=max_upload_bytes)

    # -- the key ----------------------------------------------------------------------------

    async def emergency_kit(self, *, confirm: str, requested_by: str | None) -> str:
        """The server's age identity as an emergency kit (what `backups key export` prints), if
        `confirm` is EMERGENCY_KIT_CONFIRM; each export is logged, since the kit reads every
        encrypted copy."""
        if confirm != EMERGENCY_KIT_CONFIRM:
            raise ConfirmationRequired(
                f"the emergency kit reads every encrypted copy: repeat {EMERGENCY_KIT_CONFIRM!r} in confirm "
                "to export it",
                field="confirm",
            )
        kit = await asyncio.to_thread(lambda: emergency_kit(self._keyring.own()))
        log.warning("the emergency kit (the server's age identity) was exported by %s", requested_by or "a request")
        return kit

    # -- reading --------------------------------------------------------------------------

    async def list(self) -> list[LocalCopy]:
        return await asyncio.to_thread(self._folder.list)

    async def get(self, local_copy_id: str) -> LocalCopy | None:
        return await asyncio.to_thread(self._folder.get, local_copy_id)

    async def get_many(self, ids: Sequence[str]) -> dict[str, LocalCopy]:
        """The local copies with these ids that exist, by id (one trip to a worker thread)."""

        def find() -> dict[str, LocalCopy]:
            found = {copy_id: self._folder.get(copy_id) for copy_id in ids}
            return {copy_id: copy for copy_id, copy in found.items() if copy is not None}

        return await asyncio.to_thread(find)

    async def require(self, local_copy_id: str, field: str = "localCopyId") -> LocalCopy:
        return await asyncio.to_thread(self._folder.require, local_copy_id, field)

    def path_of(self, copy: LocalCopy) -> Path:
        return Path(copy.path)  # in the folder, or a staging copy in its subfolder

    # -- delete and hold (delete.py) ------------------------------------------------------------

    async def delete(self, local_copy_id: str) -> str:
        """Delete a local copy; BUSY while an import or a download reads it."""
        return await delete_copy(self._folder, self._runner.holds, local_copy_id)

    async def hold(self, local_copy_id: str, field: str = "localCopyId") -> tuple[LocalCopy, Hold]:
        """Hold a local copy for something that will read it (an import, a download), then
        check it exists (NOT_FOUND if a delete won); release the hold when done."""
        return await hold_copy(self._folder, self._runner.holds, local_copy_id, field)

    # -- export (export.py) -------------------------------------------------------------------

    async def start_export(self, point_id: str, *, requested_by: str | None, encrypt: bool = False) -> Operation:
        """Start writing a restore point to a ZIP in the local copies folder (age-encrypted:
        `.zip.age`, for the server's identity and every recovery recipient)."""
        return await self._export.start(point_id, requested_by=requested_by, encrypt=encrypt)

    async def export_staging(self, ctx: OperationContext, point: RestorePoint) -> LocalCopy:
        """Write a restore point's copy as a step of another operation (a schedule's run), to be
        sent elsewhere: never listed as a local copy; `remove_staging` after."""
        return await self._export.staging(ctx, point)

    async def remove_staging(self, copy: LocalCopy) -> None:
        """Remove a copy `export_staging` made."""
        await self._export.remove_staging(copy)

    # -- import (importing.py) ----------------------------------------------------------------

    async def start_import(self, local_copy_id: str, *, requested_by: str | None) -> Operation:
        """Start importing a local copy as a restore point (nothing is written until all checks pass)."""
        return await self._import.start(local_copy_id, requested_by=requested_by)

    # -- upload (upload.py) ------------------------------------------------------------------

    async def upload(self, stream: BinaryIO, file_name: str | None) -> LocalCopy:
        """Check an uploaded copy in full, then move it into the folder; nothing stays if it fails."""
        return await self._upload.upload(stream, file_name)
