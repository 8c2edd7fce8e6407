"""Time limits for slow clients: a request's headers must arrive in time, and its body must not stall.

uvicorn has a keep-alive timeout between requests but none while one arrives: a client that
sends half a request line, or half a body, held its connection (and its task, and its
buffers) forever, so a few hundred such clients could exhaust the server (slowloris).
"""

from __future__ import annotations

import asyncio
import logging
from asyncio import TimerHandle
from typing import Any

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("server.web")


def header_timeout_protocol(seconds: float) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol, closing a connection whose request headers take over `seconds`
    to arrive: counted from the connection's start, or from a later request's first byte."""

    class HeaderTimeoutProtocol(HttpToolsProtocol):
        _header_timer: TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._start_header_timer()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            if self._header_timer is None:
                self._start_header_timer()

        def on_headers_complete(self) -> None:
            self._stop_header_timer()
            super().on_headers_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_header_timer()
            super().connection_lost(exc)

        def _start_header_timer(self) -> None:
            self._header_timer = self.loop.call_later(seconds, self._headers_too_slow)

        def _stop_header_timer(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_too_slow(self) -> None:
            self._header_timer = None
            if not self.transport.is_closing():
                log.debug("closed a connection whose request headers took over %s s", seconds)
                self.transport.close()

    return HeaderTimeoutProtocol


class ClientTooSlow(Exception):
    """The client sent no more of its request body within the body timeout."""


class BodyTimeout:
    """Answers 408 and closes the connection when a request body stalls: no more of it came
    within `seconds` while the app was waiting for it. Only waiting counts, so a big upload
    that keeps coming, or an app that is slow to read, is never cut off."""

    def __init__(self, app: ASGIApp, *, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body_done = False
        started = False

        async def timed_receive() -> Message:
            nonlocal body_done
            if body_done:  # after the body, receive() waits for the disconnect: no limit on that
                return await receive()
            try:
                async with asyncio.timeout(self.seconds):
                    message = await receive()
            except TimeoutError:
                raise ClientTooSlow from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, timed_receive, tracking_send)
        except ClientTooSlow:
            log.debug("answered 408 to a request whose body stalled for %s s", self.seconds)
            if not started:
                message = f"The request body stalled: nothing more of it came within {self.seconds:g} seconds."
                body = {"data": None, "errors": [{"message": message, "extensions": {"code": "REQUEST_TIMEOUT"}}]}
                # Connection: close makes uvicorn close the connection once the answer is out.
                await JSONResponse(body, status_code=408, headers={"Connection": "close"})(scope, receive, send)
