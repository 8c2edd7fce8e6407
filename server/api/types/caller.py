"""Tokens as the API shows them: the caller (`me`) and, for admins, every token (`apiTokens`),
never a secret."""

from __future__ import annotations

from datetime import datetime

import strawberry

from server.api.context import Actor
from server.model.access import tokens

strawberry.enum(
    tokens.Role,
    description="What a token may do: VIEWER reads and subscribes; OPERATOR also creates, "
    "exports, imports, uploads, makes download URLs, cancels and dismisses; ADMIN also "
    "applies, deletes and changes settings. Tokens are made with `backups token create` or createApiToken.",
)
Role = tokens.Role
strawberry.enum(tokens.TokenStatus, description="ACTIVE works; EXPIRED and REVOKED are refused.")
TokenStatus = tokens.TokenStatus


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


@strawberry.type(
    name="ApiToken", description="An API token. Its secret is shown once, by createApiToken, and never kept."
)
class ApiTokenType:
    id: strawberry.ID
    name: str = strawberry.field(description="Recorded as requestedBy and createdBy of what the token does.")
    role: Role
    status: TokenStatus
    hint: str = strawberry.field(description="The secret's first characters, to tell tokens apart.")
    created_at: datetime
    created_by: str | None = strawberry.field(description="The token that made it, or `cli`.")
    expires_at: datetime | None = strawberry.field(description="Null for never.")
    revoked_at: datetime | None

    @classmethod
    def from_domain(cls, token: tokens.ApiToken, now: datetime) -> ApiTokenType:
        return cls(
            id=strawberry.ID(token.id),
            name=token.name,
            role=token.role,
            status=token.status(now),
            hint=token.hint,
            created_at=token.created_at,
            created_by=token.created_by,
            expires_at=token.expires_at,
            revoked_at=token.revoked_at,
        )
