"""Local copies: export a restore point to a ZIP, import one back, upload, delete."""

from __future__ import annotations

import asyncio
import builtins
import dataclasses
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote

from server.model.errors import InvalidArchive, InvalidInput, OperationErrorCode, OperationFailed
from server.model.ids import new_id
from server.model.manifests import manifest_checksum
from server.model.names import is_our_restore_point_id
from server.model.records import (
    EntryKind,
    LocalCopy,
    Operation,
    OperationKind,
    RestorePoint,
    RestorePointOrigin,
)
from server.operations.holds import Held, Hold
from server.operations.live import OperationContext
from server.operations.runner import OperationRunner
from server.services.copy_naming import BeforeNaming, CopyNaming
from server.services.restore_points import RestorePointService
from server.storage.blobs.content_store import ContentStore
from server.storage.durability import TEMP_SUFFIX, atomic_write, temp_prefix
from server.storage.encryption import MAGIC, Cancelled, EncryptedDamaged, KeyMissing, Keyring
from server.storage.full import files_full
from server.storage.local_copy.folder import (
    STAGING_FOLDER,
    LocalCopyFolder,
    copy_id,
    file_name_of,
    slug,
    split_copy_name,
)
from server.storage.local_copy.format import (
    ContentMismatch,
    CopyCancelled,
    LocalCopyManifest,
    LocalCopyReader,
    open_local_copy,
    read_manifest,
    verify_local_copy,
    write_local_copy,
)
from server.test_seams import StepControl

COPY_CHUNK = 1024 * 1024


class LocalCopyService:
    def __init__(
        self,
        *,
        folder: LocalCopyFolder,
        store: ContentStore,
        runner: OperationRunner,
        restore_points: RestorePointService,
        max_upload_bytes: int,
        steps: StepControl | None = None,
    ) -> None:
        self._folder = folder
        self._staging: LocalCopyFolder | None = None  # made on first use: most servers never stage
        self._store = store
        self._runner = runner
        self._restore_points = restore_points
        self._max_upload_bytes = max_upload_bytes
        # Registered here, before the runner starts: it finishes exports and fetches a crash cut.
        self.naming = CopyNaming(folder=folder, runner=runner, steps=steps or StepControl())

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

    # -- delete -----------------------------------------------------------------------------

    async def delete(self, local_copy_id: str) -> str:
        """Delete a local copy; BUSY while an import or a download reads it."""
        name = file_name_of(local_copy_id) or local_copy_id
        busy = f"local copy {name} is being imported or downloaded; try again after it"
        async with self._runner.holds.deleting(Held.LOCAL_COPY, _canonical(local_copy_id), busy=busy):
            copy = await self.require(local_copy_id, field="id")
            await asyncio.to_thread(self._folder.delete, copy)
        return copy.id

    async def hold(self, local_copy_id: str, field: str = "localCopyId") -> tuple[LocalCopy, Hold]:
        """Hold a local copy for something that will read it (an import, a download), then
        check it exists (NOT_FOUND if a delete won); release the hold when done."""
        hold = await self._runner.holds.hold(Held.LOCAL_COPY, _canonical(local_copy_id))
        try:
            return await self.require(local_copy_id, field=field), hold
        except BaseException:
            hold.release()
            raise

    # -- export -----------------------------------------------------------------------------

    async def start_export(self, point_id: str, *, requested_by: str | None, encrypt: bool = False) -> Operation:
        """Start writing a restore point to a ZIP in the local copies folder (age-encrypted:
        `.zip.age`, for the server's identity and every recovery recipient)."""
        point, hold = await self._restore_points.hold(point_id, field="restorePointId")

        async def job(ctx: OperationContext) -> None:
            await self._export(ctx, point, encrypt)

        return await self._runner.submit(
            OperationKind.EXPORT_RESTORE_POINT, job, requested_by=requested_by, restore_point_id=point.id, holds=[hold]
        )

    async def export_staging(self, ctx: OperationContext, point: RestorePoint) -> LocalCopy:
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
        """Remove a copy `export_staging` made."""

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
        # A user's copy: its name is stored before it is given (see copy_naming.py).
        before_naming = None if staging is not None else self.naming.recorder(ctx)
        entries = await self._restore_points.entries(point.id)
        name = await asyncio.to_thread(folder.new_name, point.created_at, point.label, point.id, encrypted=encrypt)
        target = folder.root / name
        ctx.log(f"Writing {len(entries)} items ({point.size_bytes} bytes) to {name}.")
        if encrypt:
            ctx.log(f"Encrypting (age) to {', '.join(self._recipients_named())}.")
        await ctx.pace()

        def place(temp: Path) -> Path:
            nonlocal name
            # Checked before it gets a name: a copy that does not describe its restore point
            # in full must never appear as a good one.
            _check_written(temp, point, folder)
            if encrypt:  # the checked plain ZIP, encrypted file to file (streaming), then named
                name = self.encrypt_into_folder(temp, name, before_naming=before_naming)
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
            if (full := files_full(error, self._folder_name())) is not None:
                raise full from None
            raise
        if staging is not None:
            ctx.log(f"Staging copy {name} written: {size} bytes.")
            return name
        await self.naming.named(ctx)
        ctx.set_subject(local_copy_id=copy_id(name))
        ctx.log(f"Local copy {name} written: {size} bytes" + (" before encryption." if encrypt else "."))
        return name

    # -- encryption -----------------------------------------------------------------------

    @property
    def keyring(self) -> Keyring:
        if self._folder.keyring is None:
            raise RuntimeError("this server has no keyring")
        return self._folder.keyring

    def _recipients_named(self) -> builtins.list[str]:
        return [f"the server's identity {self.keyring.public()}", *(f"recovery {r}" for r in self.keyring.recovery)]

    def encrypt_into_folder(
        self,
        plain: Path,
        name: str,
        on_bytes: Callable[[int], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        before_naming: BeforeNaming | None = None,
    ) -> str:
        """Encrypt a plain copy into the folder as `name` (or a free variant); returns the name."""
        with atomic_write(self._folder.root / name) as pending:
            self.keyring.encrypt(plain, pending.file, on_bytes, should_stop)
            pending.sync()
            os.chmod(pending.temp, 0o600)
            placed = self._folder.place(pending.temp, name, before_naming)
            pending.placed_at(self._folder.root / placed)
        return placed

    def decrypt_to_temp(
        self,
        path: Path,
        on_bytes: Callable[[int], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> Path:
        """The plain ZIP of an encrypted copy, as a hidden temporary file in the folder that
        the caller removes. Raises KeyMissing, EncryptedDamaged or Cancelled (nothing left)."""
        fd, temp_name = tempfile.mkstemp(dir=self._folder.root, prefix=temp_prefix(path.name), suffix=TEMP_SUFFIX)
        temp = Path(temp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                self.keyring.decrypt(path, out, on_bytes, should_stop)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return temp

    # -- import -----------------------------------------------------------------------------

    async def start_import(self, local_copy_id: str, *, requested_by: str | None) -> Operation:
        """Start importing a local copy as a restore point (nothing is written until all checks pass)."""
        copy, hold = await self.hold(local_copy_id)
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
                lambda on_bytes, stop: self.decrypt_to_temp(path, on_bytes, stop),
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
            if (full := files_full(error, self._folder_name())) is not None:
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
        self, ctx: OperationContext, reader: LocalCopyReader, pinned: builtins.list[str], total: int
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

    # -- upload -----------------------------------------------------------------------------

    async def upload(self, stream: BinaryIO, file_name: str | None) -> LocalCopy:
        """Check an uploaded copy in full, then move it into the folder; nothing stays if it fails."""
        try:
            return await asyncio.to_thread(self._upload, stream, file_name)
        except OSError as error:
            if (full := files_full(error, self._folder_name())) is not None:
                full.field = "file"
                raise full from None
            raise

    def _upload(self, stream: BinaryIO, file_name: str | None) -> LocalCopy:
        root = self._folder.root
        try:
            # The final name is known only once the copy is checked: it is set before the rename.
            with atomic_write(root / "upload") as pending:
                size = 0
                while chunk := stream.read(COPY_CHUNK):
                    size += len(chunk)
                    if size > self._max_upload_bytes:
                        raise InvalidInput(
                            f"the upload is larger than the {self._max_upload_bytes} byte limit", field="file"
                        )
                    pending.file.write(chunk)
                pending.sync()
                encrypted = _starts_with_age(pending.temp)
                manifest = self.verify_copy(pending.temp, encrypted=encrypted)
                meta = manifest.restore_point
                name = _upload_name(file_name, encrypted) or self._folder.new_name(
                    meta["createdAt"], str(meta["label"]), str(meta["id"]), encrypted=encrypted
                )
                os.chmod(pending.temp, 0o600)
                name = self._folder.place(pending.temp, name)  # exclusively: never over another copy
                pending.placed_at(root / name)
                # The file as named now (giving it its name changed its ctime), deleted since or not.
                stat = os.fstat(pending.file.fileno())
        except InvalidArchive as error:
            raise InvalidArchive(error.message, field="file") from None
        except KeyMissing as error:
            raise InvalidArchive(f"the copy is {error.message}", field="file") from None
        # Not looked up again: a delete may already have removed it, and the upload still succeeded.
        return self._folder.placed(name, stat, str(meta["id"]))

    def verify_copy(self, path: Path, *, encrypted: bool) -> LocalCopyManifest:
        """Read a copy in full (an encrypted one decrypted into a temporary file first); raises
        InvalidArchive naming the problem, KeyMissing for a copy this server cannot decrypt."""
        if not encrypted:
            manifest = verify_local_copy(path, self._folder.limits)
        else:
            try:
                plain = self.decrypt_to_temp(path)
            except EncryptedDamaged as error:
                raise InvalidArchive(error.message) from None
            try:
                manifest = verify_local_copy(plain, self._folder.limits)
            finally:
                plain.unlink(missing_ok=True)
        if manifest_checksum(manifest.entries) != manifest.restore_point["checksum"]:
            raise InvalidArchive("the manifest's checksum does not match its entries")
        return manifest

    def _folder_name(self) -> str:
        return f"the local copies folder ({self._folder.root})"


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


def _canonical(local_copy_id: str) -> str:
    """One id per file (an id decodes leniently), so a hold and a delete meet on one key."""
    name = file_name_of(local_copy_id)
    return copy_id(name) if name is not None else local_copy_id


def _upload_name(file_name: str | None, encrypted: bool = False) -> str | None:
    if not file_name:
        return None
    # Some clients percent-encode the multipart filename; a name never needs a literal '%XX'.
    base = Path(unquote(file_name).replace("\\", "/")).name
    stem, ending = split_copy_name(base)
    if not ending:
        return None
    # The ending says what the file is (the age tool and people go by it), whatever it was called.
    return f"{slug(stem, limit=80)}.zip" + (".age" if encrypted else "")


def _starts_with_age(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(len(MAGIC)) == MAGIC


def _fresh_id() -> str:
    return new_id("rp")
