"""What is backed up and what it takes: the configured sources, each checked now, and the
storage the backups take on disk."""

from __future__ import annotations

import strawberry

from server.api.context import Info
from server.api.types.source import Source
from server.api.types.storage_usage import StorageUsage


@strawberry.type
class SourceQueries:
    @strawberry.field(description="The configured sources, in config file order, each checked now (reachable, size).")
    async def sources(self, info: Info) -> list[Source]:
        return [Source.from_domain(s) for s in await info.context.services.sources.describe_all()]


@strawberry.type
class StorageQueries:
    @strawberry.field(description="What the backups take on disk now.")
    async def storage(self, info: Info) -> StorageUsage:
        return StorageUsage.from_domain(await info.context.services.usage.read())
