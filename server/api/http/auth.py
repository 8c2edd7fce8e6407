"""Authentication: bearer tokens from HTTP headers and websocket connection_init payloads.

Who may do what (roles per root field) is in server/api/permissions.py; this module answers "who is it?".
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping

from strawberry.extensions import SchemaExtension

from server.api.context import ANONYMOUS, UNCHECKED_ADMIN, Actor, Context
from server.api.errors import ClientError
from server.model.access.tokens import Role
from server.model.errors import RequestErrorCode
from server.services.access import AccessService

log = logging.getLogger("server.auth")

UNAUTHENTICATED = RequestErrorCode.UNAUTHENTICATED
FORBIDDEN = RequestErrorCode.FORBIDDEN


def bearer_token(value: str | None) -> str | None:
    """The token in an `Authorization: Bearer <token>` value, or None."""
    scheme, _, token = (value or "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def connection_token(params: Mapping[str, object] | None) -> str | None:
    """The token in a connection_init payload: {"authorization": "Bearer <token>"} or {"token": "<token>"}."""
    if not isinstance(params, Mapping):
        return None
    for key in ("authorization", "Authorization"):
        if isinstance(value := params.get(key), str):
            return bearer_token(value)
    token = params.get("token")
    return (token.strip() or None) if isinstance(token, str) else None


async def identify(access: AccessService, token: str | None, *, auth_enabled: bool) -> Actor:
    """Whose token this is; ANONYMOUS when it is missing, unknown, expired or revoked."""
    if not auth_enabled:
        return UNCHECKED_ADMIN
    found = await access.authenticate(token)
    return Actor.of_token(found) if found is not None else ANONYMOUS


async def current_actor(context: Context, *, recent_ok: bool = False) -> Actor:
    """The caller of this operation. A websocket checks its token again each time, so a token
    revoked after the connection opened stops working at the connection's next operation.
    `recent_ok`: a check made a moment ago for another connection will do (background checks)."""
    actor = context.actor
    token_id = actor.token_id if context.recheck_token else None
    if token_id is not None and not await context.services.access.is_active(token_id, recent_ok=recent_ok):
        log.info("token %r is no longer valid: refusing its websocket's operations", actor.name)
        context.actor = actor = ANONYMOUS
    return actor


def unauthenticated(context: Context) -> ClientError:
    """The error for a caller without a valid token."""
    if context.offered_token is None:
        return ClientError(
            "Authentication required: send an API token as `Authorization: Bearer <token>`.",
            UNAUTHENTICATED,
        )
    if context.token_refusal == "expired":
        return ClientError(
            "The API token has expired: ask an admin for a new one (backups token create).", UNAUTHENTICATED
        )
    if context.token_refusal == "revoked":
        return ClientError("The API token has been revoked.", UNAUTHENTICATED)
    return ClientError("The API token is not valid: this server knows no such token.", UNAUTHENTICATED)


def close_reason(context: Context) -> str:
    """Why a websocket is refused for its token, short enough for a close frame (123 bytes)."""
    if context.offered_token is None:
        return 'no API token: send {"authorization": "Bearer <token>"} in connection_init'
    if context.token_refusal in ("expired", "revoked"):
        return f"the API token has {'expired' if context.token_refusal == 'expired' else 'been revoked'}"
    return "this server knows no such API token"


async def note_refusal(context: Context, token: str | None) -> None:
    """Record why `token` was refused (expired, revoked), for the error that says so to its holder."""
    if token is not None and context.config.auth_enabled:
        status = await context.services.access.refusal(token)
        context.token_refusal = status.value if status is not None else None


def forbidden(actor: Actor, needed: Role, field: str) -> ClientError:
    """The error for a caller whose role is too small for a field."""
    log.warning("refused %s to token %r (role %s, needs %s)", field, actor.name, actor.role, needed)
    return ClientError(f"This needs the {needed.value} role; the token has the {actor.role} role.", FORBIDDEN)


class RequireAuthentication(SchemaExtension):
    """Refuses every operation, introspection included, from a caller without a valid token.

    HTTP requests without one are refused before parsing (server/app.py); this catches the rest:
    operations on a websocket whose token was revoked or expired after it connected."""

    async def on_execute(self) -> AsyncIterator[None]:
        context = self.execution_context.context
        if (await current_actor(context)).is_anonymous:
            raise unauthenticated(context)
        yield
