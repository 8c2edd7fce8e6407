"""Request limits at the HTTP edge: body size, and no multipart request without a bearer header."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(Exception):
    pass


class RequestLimits:
    """Refuses bodies over the limit with 413, whether declared (Content-Length) or streamed.

    Uploads (multipart bodies, and any request under `upload_paths`) get their own, larger
    limit, and must carry an Authorization header: a multipart POST is a "simple" CORS request
    that any web page can make a browser send, so without this rule a page could smuggle a
    request past the same-origin policy."""

    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int, max_upload_bytes: int, upload_paths: Sequence[str] = ()
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_upload_bytes = max_upload_bytes
        self.upload_paths = tuple(upload_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        multipart = headers.get("content-type", "").lower().startswith("multipart/")
        upload = multipart or (bool(self.upload_paths) and scope["path"].startswith(self.upload_paths))
        if upload and not headers.get("authorization"):
            await _refuse(
                scope, receive, send, 401, "UNAUTHENTICATED", "Uploads need an `Authorization: Bearer <token>` header."
            )
            return
        limit = self.max_upload_bytes if upload else self.max_body_bytes
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await _refuse(scope, receive, send, 413, "PAYLOAD_TOO_LARGE", _too_large(limit))
            return

        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await _refuse(scope, receive, send, 413, "PAYLOAD_TOO_LARGE", _too_large(limit))


def _too_large(limit: int) -> str:
    return f"The request body is larger than the limit of {limit} bytes."


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, code: str, message: str) -> None:
    body = {"data": None, "errors": [{"message": message, "extensions": {"code": code}}]}
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    await JSONResponse(body, status_code=status, headers=headers)(scope, receive, send)
