"""Applying a restore point and the system it changes: applyRestorePoint, system,
systemChanged. What an apply would change (applyPreview) is in diffs.py."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry

from server.api.context import Info
from server.api.errors import attempt
from server.api.features.operations import OperationPayload
from server.api.types.item import ItemSelection, selections
from server.api.types.system import System


@strawberry.type
class ApplyMutations:
    @strawberry.mutation(
        description="Replace the current configuration with a restore point's, then restart. "
        "`confirm` must repeat `restorePointId` (else CONFIRMATION_REQUIRED). A safety restore "
        "point of the current state is made first unless `createSafetyRestorePoint` is false. "
        "Exclusive: while it runs, updateSettings and new operations get BUSY. If a source "
        "fails, the state before is restored and the operation ends FAILED. `sources`: apply only "
        "these sources, each named once (the safety restore point still holds every source); none: all. "
        "`expectedFingerprint` (from applyPreview): CONFLICT if the configuration changed since. "
        "`items`: put back only these items (not with `sources`): each touched source keeps everything "
        "else as it is now; the safety restore point then holds the touched sources. `restart`: run the "
        "restart step after the apply; null: restart unless only settings items go back (a whole apply "
        "always restarts when null)."
    )
    async def apply_restore_point(
        self,
        info: Info,
        restore_point_id: strawberry.ID,
        confirm: str,
        create_safety_restore_point: bool | None = True,
        sources: list[str] | None = None,
        expected_fingerprint: str | None = None,
        items: list[ItemSelection] | None = None,
        restart: bool | None = None,
    ) -> OperationPayload:
        services, actor = info.context.services, info.context.actor
        op, errors = await attempt(
            lambda: services.apply.start(
                restore_point_id=str(restore_point_id),
                confirm=confirm,
                create_safety_restore_point=create_safety_restore_point is not False,
                requested_by=actor.name,
                sources=sources,
                expected_fingerprint=expected_fingerprint,
                items=selections(items),
                restart=restart,
            )
        )
        return OperationPayload.of(op, errors)


@strawberry.type
class SystemQueries:
    @strawberry.field(description="The running system: state, version, configuration fingerprint.")
    async def system(self, info: Info) -> System:
        return System.from_domain(info.context.services.system.status)


@strawberry.type
class SystemSubscriptions:
    @strawberry.subscription(
        description="The system's state at once, then each change (RUNNING -> APPLYING -> "
        "RESTARTING -> RUNNING during an apply). Never completes on its own."
    )
    async def system_changed(self, info: Info) -> AsyncGenerator[System, None]:
        async for status in info.context.services.system.follow():
            yield System.from_domain(status)
