"""The configured sources, each checked now."""

from __future__ import annotations

import strawberry

from server.api.context import Info
from server.api.types.source import Source


@strawberry.type
class SourceQueries:
    @strawberry.field(description="The configured sources, in config file order, each checked now (reachable, size).")
    async def sources(self, info: Info) -> list[Source]:
        return [Source.from_domain(s) for s in await info.context.services.sources.describe_all()]
