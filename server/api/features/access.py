"""Tokens and access: the `me` query, which token is asking, with its role, so a client can show what it may do."""

from __future__ import annotations

import strawberry

from server.api.context import Info
from server.api.http.auth import current_actor
from server.api.types.caller import Caller


@strawberry.type
class AccessQueries:
    @strawberry.field(description="The token making this request: its name, role and expiry.")
    async def me(self, info: Info) -> Caller:
        return Caller.from_actor(await current_actor(info.context))
