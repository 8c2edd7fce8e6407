"""GET /download/{token}: a local copy through a signed, expiring link.

The file is opened first and its fingerprint checked on the open descriptor, so the bytes
sent are exactly the file the link was made for, even if the name is replaced mid-request.
Streams in constant memory, with Content-Length, an attachment name, a strong ETag and Range.
A client that stops reading is cut off once a piece of the file waits longer than the stall
limit to be taken, so it cannot hold the copy (and make deleting it BUSY) for ever.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response

from server.model.access.download_links import DownloadSigner, LinkExpired, LinkInvalid
from server.operations.holds import Held, HoldRegistry
from server.storage.local_copy.folder import copy_id, fingerprint, is_listable

log = logging.getLogger(__name__)

# Each read from disk is sent in pieces of this size, each of which must be taken by the client
# within the stall limit: a slow reader (4 KiB/s at the default 60 s) is never cut off, one
# that reads nothing is.
SEND_PIECE = 256 * 1024


class ClientStalled(Exception):
    """The client took no more of the download within the stall limit."""


class OpenFileResponse(FileResponse):
    """A FileResponse that streams from a file it was handed already open."""

    chunk_size = 4 * 1024 * 1024  # large reads: far fewer loop round trips per gigabyte

    def __init__(
        self, fd: int, stat: os.stat_result, release: Callable[[], None], *, stall_seconds: float, **kwargs: Any
    ) -> None:
        self._fd = fd
        self._release = release
        self._stall_seconds = stall_seconds
        super().__init__(f"/dev/fd/{fd}", stat_result=stat, **kwargs)

    @asynccontextmanager
    async def _open_file(self) -> AsyncIterator[anyio.AsyncFile[bytes]]:
        file = anyio.wrap_file(os.fdopen(os.dup(self._fd), "rb"))
        try:
            yield file
        finally:
            with anyio.CancelScope(shield=True):
                await file.aclose()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def send_in_time(message: Any) -> None:
            body = message.get("body", b"") if message["type"] == "http.response.body" else b""
            if len(body) <= SEND_PIECE:
                await send_within(send, message, self._stall_seconds)
                return
            last = len(body) - SEND_PIECE
            for start in range(0, len(body), SEND_PIECE):
                more = start < last or message.get("more_body", False)
                piece = {"type": "http.response.body", "body": body[start : start + SEND_PIECE], "more_body": more}
                await send_within(send, piece, self._stall_seconds)

        try:
            await super().__call__(scope, receive, send_in_time)
        except ClientStalled:
            log.warning(
                "a download of %s stopped: its client took nothing for %g s (what it read is free again)",
                self.filename,
                self._stall_seconds,
            )
        finally:
            os.close(self._fd)
            self._release()


async def send_within(send: Any, message: Any, stall_seconds: float) -> None:
    """Send one message of a response; ClientStalled if the client has not taken it in time."""
    try:
        async with asyncio.timeout(stall_seconds):
            await send(message)
    except TimeoutError:
        raise ClientStalled from None


def _open(root: str, name: str) -> tuple[int, os.stat_result] | None:
    try:
        fd = os.open(os.path.join(root, name), os.O_RDONLY | os.O_NOFOLLOW)
    except (FileNotFoundError, OSError):
        return None
    return fd, os.fstat(fd)


def download_endpoint(signer: DownloadSigner, root: str, holds: HoldRegistry, *, stall_seconds: float) -> Any:
    """The Starlette endpoint for /download/{token}; the copy is held (deleting it is BUSY)
    from before it is opened until the response ends (or its client stalls `stall_seconds`)."""

    async def download(request: Request) -> Response:
        try:
            grant = signer.verify(request.path_params["token"])
        except LinkInvalid:
            return PlainTextResponse("This download link is not valid.\n", status_code=403)
        except LinkExpired:
            return PlainTextResponse("This download link has expired.\n", status_code=410)
        # The name came from our own signature, but check it anyway: no path leaves the folder.
        if not is_listable(grant.file_name):
            return _gone()
        hold = await holds.hold(Held.LOCAL_COPY, copy_id(grant.file_name))
        try:
            opened = await asyncio.to_thread(_open, root, grant.file_name)
        except BaseException:
            hold.release()
            raise
        if opened is not None and fingerprint(opened[1]) != grant.fingerprint:
            os.close(opened[0])
            opened = None
        if opened is None:
            hold.release()
            return _gone()
        fd, stat = opened
        return OpenFileResponse(
            fd,
            stat,
            hold.release,
            stall_seconds=stall_seconds,
            filename=grant.file_name,
            # An encrypted copy is not a ZIP to whatever opens the download.
            media_type="application/octet-stream" if grant.file_name.endswith(".age") else "application/zip",
            headers={"etag": f'"{grant.fingerprint}"', "cache-control": "private, no-store"},
        )

    return download


def _gone() -> Response:
    return PlainTextResponse("The local copy of this link was deleted or replaced.\n", status_code=404)
