"""graphql-transport-ws with tokens: the handler that ends a connection whose token stops working."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.subscriptions.protocols.graphql_transport_ws.types import ConnectionInitMessage

from server.api.auth import current_actor
from server.api.context import Context
from server.memory_trim import subscription_ended

log = logging.getLogger("server.auth")

FORBIDDEN_CLOSE_CODE = 4403


class TokenCheckingHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """Checks the connection's token every `auth_recheck_seconds` (the view's attribute) and,
    once it is revoked or expired, ends the running subscriptions and closes with 4403.

    Each new operation checks the token too (RequireAuthentication), so this only matters
    for subscriptions that run for a long time."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._watch: asyncio.Task[None] | None = None

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        await super().handle_connection_init(message)
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
                await self.websocket.close(code=FORBIDDEN_CLOSE_CODE, reason="Forbidden")
            return
