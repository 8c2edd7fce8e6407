"""Tokens and access: the `me` query, which token is asking, with its role, so a client can show
what it may do; and, for admins, the tokens themselves: list, create (the secret shown once) and
revoke, as `backups token` does on the server."""

from __future__ import annotations

from datetime import timedelta

import strawberry

from server.api.context import Info
from server.api.errors import UserError, attempt
from server.api.http.auth import current_actor
from server.api.types.caller import ApiTokenType, Caller, Role
from server.model.access.tokens import ApiToken
from server.model.errors import InvalidInput


@strawberry.type
class ApiTokenCreatedPayload:
    token: ApiTokenType | None
    secret: str | None = strawberry.field(
        description="The token itself, to send as `Authorization: Bearer <secret>`: shown this once, never again."
    )
    user_errors: list[UserError]


@strawberry.type
class ApiTokenPayload:
    token: ApiTokenType | None
    user_errors: list[UserError]


@strawberry.type
class AccessQueries:
    @strawberry.field(description="The token making this request: its name, role and expiry.")
    async def me(self, info: Info) -> Caller:
        return Caller.from_actor(await current_actor(info.context))

    @strawberry.field(
        description="Every token ever made, oldest first, revoked and expired ones included; never a secret."
    )
    async def api_tokens(self, info: Info) -> list[ApiTokenType]:
        access = info.context.services.access
        now = access.now()
        return [ApiTokenType.from_domain(token, now) for token in await access.list()]


@strawberry.type
class AccessMutations:
    @strawberry.mutation(
        description="Make a token with this name (unique among active tokens) and role; `expiresInSeconds` null: "
        "it never expires. The answer holds the secret, the only time it is shown."
    )
    async def create_api_token(
        self, info: Info, name: str, role: Role, expires_in_seconds: int | None = None
    ) -> ApiTokenCreatedPayload:
        access, actor = info.context.services.access, info.context.actor

        async def create() -> tuple[ApiToken, str]:
            if expires_in_seconds is not None and expires_in_seconds <= 0:
                raise InvalidInput("expiresInSeconds must be more than 0, or null for never", field="expiresInSeconds")
            expires_in = timedelta(seconds=expires_in_seconds) if expires_in_seconds is not None else None
            return await access.create(name=name, role=role, expires_in=expires_in, created_by=actor.name)

        made, errors = await attempt(create)
        if made is None:
            return ApiTokenCreatedPayload(token=None, secret=None, user_errors=errors)
        token, secret = made
        return ApiTokenCreatedPayload(
            token=ApiTokenType.from_domain(token, access.now()), secret=secret, user_errors=[]
        )

    @strawberry.mutation(
        description="Revoke a token: it stops working at once, its open websockets close within seconds. The last "
        "active ADMIN token cannot be revoked here (INVALID_INPUT): make another first, or use `backups token revoke`."
    )
    async def revoke_api_token(self, info: Info, id: strawberry.ID) -> ApiTokenPayload:
        access = info.context.services.access
        revoked, errors = await attempt(lambda: access.revoke(str(id), from_api=True))
        token = ApiTokenType.from_domain(revoked, access.now()) if revoked else None
        return ApiTokenPayload(token=token, user_errors=errors)
