"""graphql-transport-ws with tokens: the handler that ends a connection whose token stops working."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, cast

from graphql import GraphQLError, GraphQLSyntaxError
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.subscriptions.protocols.graphql_transport_ws.types import ConnectionInitMessage, Message

from server.api.context import Context
from server.api.http.auth import close_reason, current_actor
from server.memory_trim import subscription_ended

log = logging.getLogger("server.auth")

FORBIDDEN_CLOSE_CODE = 4403
BAD_REQUEST_CLOSE_CODE = 4400  # graphql-transport-ws: a message the protocol does not allow
INTERNAL_ERROR_CLOSE_CODE = 4500

_OBJECT_OR_NULL = (dict, type(None))
_STRING_OR_NULL = (str, type(None))
# What each message may carry (graphql-transport-ws PROTOCOL.md): field -> (types, required).
_MESSAGE_FIELDS: dict[str, dict[str, tuple[tuple[type, ...], bool]]] = {
    "connection_init": {"payload": (_OBJECT_OR_NULL, False)},
    "ping": {"payload": (_OBJECT_OR_NULL, False)},
    "pong": {"payload": (_OBJECT_OR_NULL, False)},
    "subscribe": {"id": ((str,), True), "payload": ((dict,), True)},
    "complete": {"id": ((str,), True)},
}
_SUBSCRIBE_PAYLOAD_FIELDS: dict[str, tuple[tuple[type, ...], bool]] = {
    "query": ((str,), True),
    "variables": (_OBJECT_OR_NULL, False),
    "operationName": (_STRING_OR_NULL, False),
    "extensions": (_OBJECT_OR_NULL, False),
}


def message_problem(message: object) -> str | None:
    """Why `message` is no graphql-transport-ws message (the close reason), or None if it is one."""
    if not isinstance(message, dict):
        return f"A message must be a JSON object, got {_json_kind(message)}"
    kind = message.get("type")
    if not isinstance(kind, str):
        return "A message needs a string `type`"
    fields = _MESSAGE_FIELDS.get(kind)
    if fields is None:
        return f"Unknown message type: {kind[:50]}"
    problem = _fields_problem(message, fields, f"{kind} message")
    if problem is None and kind == "subscribe":
        problem = _fields_problem(message["payload"], _SUBSCRIBE_PAYLOAD_FIELDS, "subscribe payload")
    return problem


def _fields_problem(
    values: dict[str, object], fields: dict[str, tuple[tuple[type, ...], bool]], what: str
) -> str | None:
    for name, (types, required) in fields.items():
        if name not in values:
            if required:
                return f"A {what} needs `{name}`"
            continue
        if not isinstance(values[name], types):
            wanted = " or ".join(_TYPE_NAMES[t] for t in types)
            return f"`{name}` of a {what} must be {wanted}, got {_json_kind(values[name])}"
    return None


_TYPE_NAMES = {dict: "an object", str: "a string", type(None): "null"}


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    kinds: dict[type, str] = {dict: "an object", list: "an array", str: "a string"}
    return kinds.get(type(value), type(value).__name__)


class TokenCheckingHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """Checks the connection's token every `auth_recheck_seconds` (the view's attribute) and,
    once it is revoked or expired, ends the running subscriptions and closes with 4403.

    Each new operation checks the token too (RequireAuthentication), so this only matters
    for subscriptions that run for a long time."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._watch: asyncio.Task[None] | None = None

    async def handle_message(self, message: Message) -> None:
        # Strawberry indexes into messages as if they were well formed: an array, or a subscribe
        # without a payload object, raised a TypeError that dropped the connection with no close
        # code. The protocol says to close with 4400 and a reason.
        if (problem := message_problem(message)) is not None:
            await self.handle_invalid_message(problem)
            return
        if message["type"] in ("connection_init", "ping", "pong") and message.get("payload", 0) is None:
            message = cast(Message, {**message, "payload": {}})  # null: the same as none
        try:
            await super().handle_message(message)
        except Exception:
            # Whatever else goes wrong gets a close code too, rather than a dropped connection.
            log.exception("could not handle a websocket message")
            with contextlib.suppress(Exception):
                await self.websocket.close(code=INTERNAL_ERROR_CLOSE_CODE, reason="Internal server error")

    @staticmethod
    def _get_pre_execution_close_reason(error: GraphQLError) -> str | None:
        # Strawberry closes the whole connection (4400) on a syntax error in one operation;
        # graphql-transport-ws sends such pre-execution errors as that operation's `error`
        # message, as it does validation errors, and the connection's other operations go on.
        if isinstance(error, GraphQLSyntaxError):
            return None
        return BaseGraphQLTransportWSHandler._get_pre_execution_close_reason(error)

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        # Strawberry closes a refused connection with the bare reason "Forbidden": say why instead.
        close = self.websocket.close

        async def close_saying_why(code: int, reason: str) -> None:
            if code == FORBIDDEN_CLOSE_CODE:
                reason = close_reason(self.context)
            await close(code=code, reason=reason)

        self.websocket.close = close_saying_why  # type: ignore[method-assign]
        try:
            await super().handle_connection_init(message)
        finally:
            self.websocket.close = close  # type: ignore[method-assign]
        if self.connection_acknowledged and self._watch is None and self.context.recheck_token:
            self._watch = asyncio.create_task(self._watch_token())

    async def shutdown(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        await super().shutdown()

    async def run_operation(self, operation: Any) -> None:
        try:
            await super().run_operation(operation)
        finally:
            subscription_ended()  # the garbage of many ended subscriptions is collected

    async def _watch_token(self) -> None:
        interval: float = getattr(self.view, "auth_recheck_seconds", 5.0)
        while True:
            await asyncio.sleep(interval)
            try:
                if not (await current_actor(self.context, recent_ok=True)).is_anonymous:
                    continue
            except Exception:  # a database hiccup is no reason to drop the connection
                log.exception("could not check a websocket's token; will try again")
                continue
            # End the subscriptions first, so none of them writes to a closed socket.
            for operation_id in list(self.operations):
                await self.cleanup_operation(operation_id)
            with contextlib.suppress(Exception):
                await self.websocket.close(code=FORBIDDEN_CLOSE_CODE, reason="the API token was revoked or has expired")
            return
