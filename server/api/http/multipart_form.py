"""Reading a multipart request's form within our limits, every refusal a JSON error with a code.

Starlette refuses a part over its size limit, or too many parts, with a plain-text 400 ("Part
exceeded maximum size of 1024KB.", "Too many files."). Here the same limits are ours: a part
that is not a file (`operations`, `map`) may be as large as a whole JSON request
(BACKUPS_MAX_REQUEST_BYTES), larger is 413 PAYLOAD_TOO_LARGE; more parts than a GraphQL
multipart request needs is 400 TOO_MANY_PARTS; a body that does not parse is 400 BAD_REQUEST;
a full temporary folder while a file part is spooled there is 507 STORAGE_FULL.
"""

from __future__ import annotations

import tempfile

from cross_web import FormData, HTTPException, StarletteRequestAdapter
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request

from server.model.errors import RequestErrorCode
from server.storage.full import files_full

# uploadLocalCopy takes one file; a batch of a few is fine. Each file part is spooled (in
# memory up to 1 MiB), so the count is what bounds a request's memory.
MAX_FILES = 16
MAX_FIELDS = 16  # parts that are not files: `operations` and `map`, with room to spare

# The start of each refusal's message in Starlette's multipart parser (pinned by a unit test).
_TOO_LARGE = ("Part exceeded maximum size", "Field exceeded maximum size")
_TOO_MANY = ("Too many files", "Too many fields")


class MultipartRefused(HTTPException):
    """A multipart request refused before anything ran: its HTTP status and error code."""

    def __init__(self, status_code: int, code: str, message: str) -> None:
        super().__init__(status_code, message)
        self.code = str(code)


def refusal(starlette_message: str, *, max_part_bytes: int) -> MultipartRefused:
    """Our refusal for a message of Starlette's multipart parser."""
    if starlette_message.startswith(_TOO_LARGE):
        return MultipartRefused(
            413,
            RequestErrorCode.PAYLOAD_TOO_LARGE,
            f"A part of the multipart request that is not a file (`operations`, `map`) is larger than "
            f"the limit of {max_part_bytes} bytes (BACKUPS_MAX_REQUEST_BYTES); only files may be larger.",
        )
    if starlette_message.startswith(_TOO_MANY):
        return MultipartRefused(
            400,
            RequestErrorCode.TOO_MANY_PARTS,
            f"The multipart request has too many parts: at most {MAX_FILES} files and {MAX_FIELDS} "
            "other parts (`operations`, `map`).",
        )
    return MultipartRefused(400, RequestErrorCode.BAD_REQUEST, f"The multipart body is malformed: {starlette_message}")


async def read_form(request: Request, *, max_part_bytes: int) -> FormData:
    """The request's multipart form; MultipartRefused when it is over a limit or malformed."""
    try:
        form = await request.form(max_files=MAX_FILES, max_fields=MAX_FIELDS, max_part_size=max_part_bytes)
    except MultiPartException as error:  # outside an app Starlette raises it as it is
        raise refusal(error.message, max_part_bytes=max_part_bytes) from error
    except StarletteHTTPException as error:  # inside one, as a plain-text 400
        raise refusal(str(error.detail), max_part_bytes=max_part_bytes) from error
    except OSError as error:
        # A file part over 1 MiB is spooled to the temporary folder (TMPDIR) as it arrives.
        if (full := files_full(error, f"the temporary folder ({tempfile.gettempdir()})")) is None:
            raise
        raise MultipartRefused(507, full.code, full.message) from error
    return FormData(files=form, form=form)


def limited_request_adapter(max_part_bytes: int) -> type[StarletteRequestAdapter]:
    """Strawberry's Starlette request adapter, reading multipart forms with `read_form`."""

    class LimitedRequestAdapter(StarletteRequestAdapter):
        async def get_form_data(self) -> FormData:
            return await read_form(self._request, max_part_bytes=max_part_bytes)

    return LimitedRequestAdapter
