"""What the backups take on disk now."""

from __future__ import annotations

import strawberry

from server.api.context import Info
from server.api.types.storage_usage import StorageUsage


@strawberry.type
class StorageQueries:
    @strawberry.field(description="What the backups take on disk now.")
    async def storage(self, info: Info) -> StorageUsage:
        return StorageUsage.from_domain(await info.context.services.usage.read())
