"""GET /download/item/{token}: one item of a restore point, or of a local copy read in place,
through a signed, expiring link (made by createItemDownloadUrl).

A tampered or expired link gets the answers of a local copy's link (403, 410). A file, a
link's target or a settings module is checked whole before its first byte and served like a
local copy (Content-Length, an attachment name, a strong ETag, Range); a damaged one answers
500 with a JSON error whose code is CONTENT_DAMAGED, naming the item. A table (CSV) and a
folder (ZIP) are made as they are sent, read in threads; a folder member found damaged
mid-way breaks the response off (the client's download fails, never a complete-looking ZIP).
A client that takes nothing for the stall limit is cut off, so it cannot hold the restore
point (and make deleting it BUSY) for ever.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Callable, Iterator
from email.utils import formatdate
from typing import Any
from urllib.parse import quote

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse

from server.model.access.download_links import DownloadSigner, LinkExpired, LinkInvalid
from server.model.errors import DomainError, NotFound, OperationErrorCode
from server.services.items.download import LOCAL_COPY, ItemDownload, ItemDownloadService
from server.web.download import ClientStalled, OpenFileResponse, send_within

log = logging.getLogger(__name__)

_END = object()


def attachment(file_name: str) -> str:
    """Content-Disposition for a name, RFC 6266 with RFC 5987's filename* for a non-ASCII one
    (as Starlette's FileResponse writes it for a local copy)."""
    quoted = quote(file_name)
    if quoted != file_name:
        return f"attachment; filename*=utf-8''{quoted}"
    return f'attachment; filename="{file_name}"'


class StreamedDownload(StreamingResponse):
    """A response made as it is sent from a blocking iterator, one piece per thread hop; the
    iterator is closed and what it reads released however the response ends."""

    def __init__(
        self, chunks: Iterator[bytes], release: Callable[[], None], *, stall_seconds: float, **kwargs: Any
    ) -> None:
        self._chunks = chunks
        self._release = release
        self._stall_seconds = stall_seconds
        super().__init__(self._pieces(), **kwargs)

    async def _pieces(self) -> AsyncIterator[bytes]:
        while (piece := await anyio.to_thread.run_sync(next, self._chunks, _END)) is not _END:
            assert isinstance(piece, bytes)
            yield piece

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def send_in_time(message: Any) -> None:
            await send_within(send, message, self._stall_seconds)

        try:
            await super().__call__(scope, receive, send_in_time)
        except ClientStalled:
            log.warning("a download of an item stopped: its client took nothing for %g s", self._stall_seconds)
        except DomainError as error:
            # The status line is out: ending without the body's end makes the server break the
            # connection off, which is all that can still tell the client.
            log.error("a download of an item was broken off: %s", error.message)
        finally:
            with anyio.CancelScope(shield=True):
                close = getattr(self._chunks, "close", None)
                if close is not None:
                    await anyio.to_thread.run_sync(close)
            self._release()


def item_download_endpoint(signer: DownloadSigner, items: ItemDownloadService, *, stall_seconds: float) -> Any:
    """The Starlette endpoint for /download/item/{token}."""

    async def download(request: Request) -> Response:
        try:
            link, _ = signer.verify_item(request.path_params["token"])
        except LinkInvalid:
            return PlainTextResponse("This download link is not valid.\n", status_code=403)
        except LinkExpired:
            return PlainTextResponse("This download link has expired.\n", status_code=410)
        try:
            opened = await items.open(link)
        except NotFound:
            what = "local copy" if link.origin == LOCAL_COPY else "restore point"
            return PlainTextResponse(f"The {what} of this link was deleted.\n", status_code=404)
        except DomainError as error:
            # Damaged content is the server's failure (500); a copy that cannot be read in place
            # (no key for it any more, damaged since the link was made) is the copy's state (409).
            status = 500 if error.code is OperationErrorCode.CONTENT_DAMAGED else 409
            body = {"data": None, "errors": [{"message": error.message, "extensions": {"code": error.code.value}}]}
            return JSONResponse(body, status_code=status, headers={"cache-control": "no-store"})
        return _response(opened, request.method, stall_seconds)

    return download


def _response(opened: ItemDownload, method: str, stall_seconds: float) -> Response:
    headers = {"cache-control": "private, no-store"}
    if opened.descriptor is not None:
        if opened.etag is not None:
            headers["etag"] = opened.etag
        if opened.modified_at is not None:  # not the time of the file it is read from
            headers["last-modified"] = formatdate(opened.modified_at.timestamp(), usegmt=True)
        return OpenFileResponse(
            opened.descriptor,
            os.fstat(opened.descriptor),
            opened.release,
            stall_seconds=stall_seconds,
            filename=opened.file_name,
            media_type=opened.media_type,
            headers=headers,
        )
    assert opened.chunks is not None
    headers["content-disposition"] = attachment(opened.file_name)
    if opened.size is not None:
        headers["content-length"] = str(opened.size)
    if method == "HEAD":  # what a GET would send, without making it
        close = getattr(opened.chunks, "close", None)
        if close is not None:
            close()
        opened.release()
        head = Response(status_code=200, headers=headers, media_type=opened.media_type)
        if opened.size is None:
            del head.headers["content-length"]  # unknown until made, not 0
        return head
    return StreamedDownload(
        opened.chunks, opened.release, stall_seconds=stall_seconds, headers=headers, media_type=opened.media_type
    )
