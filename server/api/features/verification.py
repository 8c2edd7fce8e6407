"""Verification: read back restore points and local copies, repair from a good copy
(verifyBackups). What each run found is on RestorePoint.verification and LocalCopy.verification."""

from __future__ import annotations

import strawberry

from server.api.context import Info
from server.api.errors import attempt
from server.api.features.operations import OperationPayload


@strawberry.type
class VerificationMutations:
    @strawberry.mutation(
        description="Start a VERIFY_BACKUPS operation: every blob the restore points use is read (once, however "
        "many share it) and checked against its SHA-256, and each manifest against its checksum; with `copies`, "
        "every local copy is read whole. A damaged or missing blob is put back from a local copy holding the "
        "same content (checked first). No ids: every restore point. `readPercent` below 100 reads that share of "
        "the blobs, the next ones in a rotation over runs (a restore point found damaged before is read whole). "
        "An unknown id is NOT_FOUND, a share outside 1..100 INVALID_INPUT; nothing starts then."
    )
    async def verify_backups(
        self,
        info: Info,
        restore_point_ids: list[strawberry.ID] | None = None,
        copies: bool | None = True,
        read_percent: int | None = 100,
    ) -> OperationPayload:
        services, actor = info.context.services, info.context.actor
        ids = [str(point_id) for point_id in restore_point_ids] if restore_point_ids is not None else None
        op, errors = await attempt(
            lambda: services.verification.start(
                restore_point_ids=ids,
                copies=copies is not False,  # null: the default
                read_percent=100 if read_percent is None else read_percent,
                requested_by=actor.name,
            )
        )
        return OperationPayload.of(op, errors)
