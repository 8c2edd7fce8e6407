from __future__ import annotations

from datetime import datetime

import strawberry

from server.api.context import Actor
from server.model.access import tokens

strawberry.enum(
    tokens.Role,
    description="What a token may do: VIEWER reads and subscribes; OPERATOR also creates, "
    "exports, imports, uploads, makes download URLs, cancels and dismisses; ADMIN also "
    "applies, deletes and changes settings. Tokens are made with `backups token create`.",
)
Role = tokens.Role


@strawberry.type(description="The token making this request.")
class Caller:
    name: str | None = strawberry.field(
        description="The token's name, as recorded in requestedBy and createdBy; null when authentication is off."
    )
    role: Role
    expires_at: datetime | None = strawberry.field(description="When the token stops working; null for never.")

    @classmethod
    def from_actor(cls, actor: Actor) -> Caller:
        assert actor.role is not None
        return cls(name=actor.name, role=actor.role, expires_at=actor.expires_at)
