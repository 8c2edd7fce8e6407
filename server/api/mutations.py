"""Mutation fields: input -> service -> payload; expected failures become userErrors."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from server.api.context import Info
from server.api.errors import attempt
from server.api.types.module import Module
from server.api.types.payloads import DeletePayload, ModulePayload, OperationPayload, RestorePointPayload
from server.api.types.restore_point import RestorePoint


@strawberry.type
class Mutation:
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

    @strawberry.mutation(description="Stop a queued or running operation; what it wrote is removed.")
    async def cancel_operation(self, info: Info, id: strawberry.ID) -> OperationPayload:
        op, errors = await attempt(lambda: info.context.services.runner.cancel(str(id)))
        return OperationPayload.of(op, errors)

    @strawberry.mutation(description="Hide a finished operation from the default operations list.")
    async def dismiss_operation(self, info: Info, id: strawberry.ID) -> OperationPayload:
        op, errors = await attempt(lambda: info.context.services.runner.dismiss(str(id)))
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

    @strawberry.mutation(
        description="Merge `values` into a settings module (RFC 7386 merge patch: objects merge, null removes a key)."
    )
    async def update_settings(self, info: Info, module: str, values: JSON) -> ModulePayload:
        result, errors = await attempt(lambda: info.context.services.settings.update(module, values))
        return ModulePayload(module=Module.from_domain(result) if result else None, user_errors=errors)
