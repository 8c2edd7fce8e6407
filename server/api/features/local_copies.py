"""Local copies (ZIP files in the local copies folder): list them, export a restore point to
one, import one, upload one, delete one. Download links are in downloads.py."""

from __future__ import annotations

import asyncio

import strawberry
from strawberry.file_uploads import Upload

from server.api.context import Info
from server.api.errors import UserError, attempt
from server.api.features.operations import OperationPayload
from server.api.types.local_copy import LocalCopy
from server.api.types.node import DeletePayload
from server.model.errors import InvalidInput


@strawberry.type
class LocalCopyPayload:
    local_copy: LocalCopy | None
    user_errors: list[UserError]


@strawberry.type
class LocalCopyQueries:
    @strawberry.field(
        description="Every file in the local copies folder, newest first; copies that cannot be imported say why "
        "in `problem`. With `serverName`: only the copies that server made (as its manifest says)."
    )
    async def local_copies(self, info: Info, server_name: str | None = None) -> list[LocalCopy]:
        copies = await info.context.services.local_copies.list()
        return [LocalCopy.from_domain(c) for c in copies if server_name is None or c.server_name == server_name]

    @strawberry.field
    async def local_copy(self, info: Info, id: strawberry.ID) -> LocalCopy | None:
        copy = await info.context.services.local_copies.get(str(id))
        return LocalCopy.from_domain(copy) if copy else None


@strawberry.type
class EmergencyKitPayload:
    kit: str | None = strawberry.field(
        description="The server's age identity with how to use it, as `backups key export` prints it: save it as a "
        "file and keep it offline. `backups key import FILE` installs it on a new server; `age -d -i FILE` decrypts "
        "one copy."
    )
    user_errors: list[UserError]


@strawberry.type
class LocalCopyMutations:
    @strawberry.mutation(
        description="The emergency kit: the key to every encrypted copy this server made. `confirm` must say "
        "`EXPORT KEY` (else CONFIRMATION_REQUIRED); each export is in the server log. Answered in the response, never "
        "as a link (a URL ends up in histories and proxy logs)."
    )
    async def export_emergency_kit(self, info: Info, confirm: str) -> EmergencyKitPayload:
        services, actor = info.context.services, info.context.actor
        kit, errors = await attempt(
            lambda: services.local_copies.emergency_kit(confirm=confirm, requested_by=actor.name)
        )
        return EmergencyKitPayload(kit=kit, user_errors=errors)

    @strawberry.mutation(
        description="Start writing a restore point to a ZIP in the local copies folder. With "
        "`encrypt: true` the copy is age-encrypted (`.zip.age`) to the server's identity and each "
        "recovery recipient of the config."
    )
    async def export_restore_point(
        self, info: Info, restore_point_id: strawberry.ID, encrypt: bool = False
    ) -> OperationPayload:
        services, actor = info.context.services, info.context.actor
        op, errors = await attempt(
            lambda: services.local_copies.start_export(str(restore_point_id), requested_by=actor.name, encrypt=encrypt)
        )
        return OperationPayload.of(op, errors)

    @strawberry.mutation(
        description="Start importing a local copy as a restore point (origin IMPORTED, keeping its "
        "label, note and creation time). Every entry is checked before anything is written. "
        "Importing a copy of a restore point that is already here imports nothing and points "
        "the operation at the existing one."
    )
    async def import_local_copy(self, info: Info, local_copy_id: strawberry.ID) -> OperationPayload:
        services, actor = info.context.services, info.context.actor
        op, errors = await attempt(
            lambda: services.local_copies.start_import(str(local_copy_id), requested_by=actor.name)
        )
        return OperationPayload.of(op, errors)

    @strawberry.mutation(description="Delete a local copy's file.")
    async def delete_local_copy(self, info: Info, id: strawberry.ID) -> DeletePayload:
        deleted, errors = await attempt(lambda: info.context.services.local_copies.delete(str(id)))
        return DeletePayload(deleted_id=strawberry.ID(deleted) if deleted else None, user_errors=errors)

    @strawberry.mutation(
        description="Upload a local copy (GraphQL multipart request). It is checked in full "
        "before it is moved into the folder; an invalid upload leaves nothing behind."
    )
    async def upload_local_copy(self, info: Info, file: Upload) -> LocalCopyPayload:
        services = info.context.services
        stream = getattr(file, "file", None)
        if stream is None:  # a plain JSON value where the multipart spec puts a file
            message = "file must be sent as a file part of a GraphQL multipart request"
            return LocalCopyPayload(
                local_copy=None, user_errors=[UserError.from_domain(InvalidInput(message, field="file"))]
            )
        try:
            copy, errors = await attempt(lambda: services.local_copies.upload(stream, getattr(file, "filename", None)))
        finally:
            # Strawberry leaves the multipart form open: its spooled temp file is ours to close,
            # or it lingers until garbage collection (an unclosed-file ResourceWarning).
            await asyncio.to_thread(stream.close)
        return LocalCopyPayload(local_copy=LocalCopy.from_domain(copy) if copy else None, user_errors=errors)
