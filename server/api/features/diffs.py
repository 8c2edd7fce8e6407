"""Diffs: compareRestorePoints, and applyPreview (what applyRestorePoint would change)."""

from __future__ import annotations

from typing import Annotated

import strawberry

from server.api.context import Info
from server.api.errors import to_client_error
from server.api.types.diff import ConfigurationDiff
from server.api.types.item import ItemSelection, selections
from server.model.errors import DomainError


@strawberry.type
class DiffQueries:
    @strawberry.field(
        description="The changes going from restore point `from` to `to`: added, removed and changed "
        "items, with their content's difference where a person can read it."
    )
    async def compare_restore_points(
        self,
        info: Info,
        from_: Annotated[strawberry.ID, strawberry.argument(name="from")],
        to: strawberry.ID,
    ) -> ConfigurationDiff:
        try:
            diff = await info.context.services.diffs.compare(str(from_), str(to))
        except DomainError as error:
            raise to_client_error(error) from None
        return ConfigurationDiff.from_domain(diff)

    @strawberry.field(
        description="What applying the restore point (only `sources`, when named, each once) would change: from the "
        "configuration as it is now to the restore point's. `fingerprint` is the configuration's now: pass "
        "it to applyRestorePoint(expectedFingerprint:) to be refused (CONFLICT) if it changes meanwhile. "
        "A source that cannot be read: SOURCE_UNAVAILABLE; a database whose tables differ: SCHEMA_MISMATCH. "
        "`items`: only the changes putting back these items would make (as applyRestorePoint(items:))."
    )
    async def apply_preview(
        self,
        info: Info,
        restore_point_id: strawberry.ID,
        sources: list[str] | None = None,
        items: list[ItemSelection] | None = None,
    ) -> ConfigurationDiff:
        try:
            diff = await info.context.services.diffs.preview(str(restore_point_id), sources, selections(items))
        except DomainError as error:
            raise to_client_error(error) from None
        return ConfigurationDiff.from_domain(diff)
