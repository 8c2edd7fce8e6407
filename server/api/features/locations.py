"""Backup locations: list them with their copies, upload to one, fetch from one, delete a copy there."""

from __future__ import annotations

import strawberry

from server.api.context import Info
from server.api.errors import attempt
from server.api.features.operations import OperationPayload
from server.api.types.location import Location
from server.api.types.node import DeletePayload


@strawberry.type
class LocationQueries:
    @strawberry.field(
        description="Every backup location, `local` first, each with the copies it holds now (asked "
        "each time: copies put there by another server appear, copies deleted there disappear)."
    )
    async def locations(self, info: Info) -> list[Location]:
        return [Location.from_domain(state) for state in await info.context.services.locations.list()]


@strawberry.type
class LocationMutations:
    @strawberry.mutation(
        description="Start streaming a local copy to a location. What arrives is read back and "
        "checked (size and SHA-256) before it counts; a failed or cancelled upload leaves nothing there."
    )
    async def upload_to_location(self, info: Info, local_copy_id: strawberry.ID, location: str) -> OperationPayload:
        services, actor = info.context.services, info.context.actor
        op, errors = await attempt(
            lambda: services.locations.start_upload(str(local_copy_id), location, requested_by=actor.name)
        )
        return OperationPayload.of(op, errors)

    @strawberry.mutation(
        description="Start streaming a copy from a location into the local copies folder. It is "
        "checked in full (and against the SHA-256 recorded at upload) before it appears; the "
        "operation's localCopy is then ready for importLocalCopy."
    )
    async def fetch_from_location(self, info: Info, remote_copy_id: strawberry.ID) -> OperationPayload:
        services, actor = info.context.services, info.context.actor
        op, errors = await attempt(lambda: services.locations.start_fetch(str(remote_copy_id), requested_by=actor.name))
        return OperationPayload.of(op, errors)

    @strawberry.mutation(description="Delete a copy at a location (at `local`, the local copy itself).")
    async def delete_remote_copy(self, info: Info, id: strawberry.ID) -> DeletePayload:
        deleted, errors = await attempt(lambda: info.context.services.locations.delete(str(id)))
        return DeletePayload(deleted_id=strawberry.ID(deleted) if deleted else None, user_errors=errors)
