"""Restore points: list and read them, create one, change its label, note, pin or expiry, delete it."""

from __future__ import annotations

from datetime import datetime

import strawberry

from server.api.context import Info
from server.api.errors import UserError, attempt, to_client_error
from server.api.features.operations import OperationPayload
from server.api.pagination import page_size
from server.api.types.node import DeletePayload
from server.api.types.page_info import Connection, connection_of
from server.api.types.restore_point import RestorePoint, RestorePointOrigin
from server.model.errors import DomainError
from server.model.records import RestorePointFilter


@strawberry.type
class RestorePointPayload:
    restore_point: RestorePoint | None
    user_errors: list[UserError]


@strawberry.type
class RestorePointQueries:
    @strawberry.field(
        description="Restore points, newest first (a Relay connection), narrowed by any of: `origin` (any of "
        "these), `scheduleId` (made by that schedule), `pinned`, `createdAfter`/`createdBefore` (exclusive), "
        "`search` (in the label or note, case-insensitive), `createdBy` (exactly this requester, e.g. "
        "`schedule:nightly` or a token's name) and `hasCopyAt` (a location's name: those with a copy there "
        "now; an unknown name is a NOT_FOUND error, a location that cannot be listed LOCATION_UNAVAILABLE)."
    )
    async def restore_points(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        origin: list[RestorePointOrigin] | None = None,
        schedule_id: strawberry.ID | None = None,
        pinned: bool | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        search: str | None = None,
        created_by: str | None = None,
        has_copy_at: str | None = None,
    ) -> Connection[RestorePoint]:
        services = info.context.services
        try:
            ids = await services.locations.restore_point_ids_at(has_copy_at) if has_copy_at is not None else None
        except DomainError as error:
            raise to_client_error(error) from None
        narrow = RestorePointFilter(
            origins=tuple(origin) if origin is not None else None,
            schedule_id=str(schedule_id) if schedule_id is not None else None,
            pinned=pinned,
            created_after=created_after,
            created_before=created_before,
            search=search,
            created_by=created_by,
            ids=ids,
        )
        try:
            page = await services.restore_points.page(
                first=page_size(first, info.context.config.max_page_size), after=after, narrow=narrow
            )
        except DomainError as error:
            raise to_client_error(error) from None
        if not narrow.empty:
            return connection_of(
                page, RestorePoint.from_domain, after=after, count=lambda: services.restore_points.count(narrow)
            )
        # The service hands out the very same first page until the next write.
        return services.connections.connection(
            page, RestorePoint.from_domain, after=after, count=services.restore_points.count
        )

    @strawberry.field
    async def restore_point(self, info: Info, id: strawberry.ID) -> RestorePoint | None:
        point = await info.context.services.restore_points.get(str(id))
        return RestorePoint.from_domain(point) if point else None


@strawberry.type
class RestorePointMutations:
    @strawberry.mutation(
        description="Start capturing every source into a new restore point; follow the "
        "returned operation with operationProgress and operationLog. `expiresAt`: the restore point "
        "deletes itself then unless pinned (INVALID_INPUT if not ahead, or more than ten years ahead)."
    )
    async def create_restore_point(
        self, info: Info, label: str | None = None, note: str | None = None, expires_at: datetime | None = None
    ) -> OperationPayload:
        services, actor = info.context.services, info.context.actor
        op, errors = await attempt(
            lambda: services.restore_points.start_create(
                label=label, note=note, requested_by=actor.name, expires_at=expires_at
            )
        )
        return OperationPayload.of(op, errors)

    @strawberry.mutation(description="Delete a restore point; content no other restore point uses is freed.")
    async def delete_restore_point(self, info: Info, id: strawberry.ID) -> DeletePayload:
        deleted, errors = await attempt(lambda: info.context.services.restore_points.delete(str(id)))
        return DeletePayload(deleted_id=strawberry.ID(deleted) if deleted else None, user_errors=errors)

    @strawberry.mutation(
        description="Change a restore point's label, note, pinned flag or expiry; an argument left out keeps "
        "its value, a null note removes it, a null expiresAt makes it never expire. A pinned restore point "
        "is never deleted, by hand, by retention or by its expiry."
    )
    async def update_restore_point(
        self,
        info: Info,
        id: strawberry.ID,
        label: str | None = None,
        note: str | None = strawberry.UNSET,
        pinned: bool | None = None,
        expires_at: datetime | None = strawberry.UNSET,
    ) -> RestorePointPayload:
        given_note = None if note is strawberry.UNSET else note
        given_expiry = None if expires_at is strawberry.UNSET else expires_at
        point, errors = await attempt(
            lambda: info.context.services.restore_points.update(
                str(id),
                label=label,
                note=given_note,
                pinned=pinned,
                clear_note=note is None,
                expires_at=given_expiry,
                clear_expiry=expires_at is None,
            )
        )
        return RestorePointPayload(restore_point=RestorePoint.from_domain(point) if point else None, user_errors=errors)
