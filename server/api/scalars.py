"""Custom scalars. ByteCount exists because GraphQL's Int stops at 2^31 - 1."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from typing import NewType, cast

import strawberry
from strawberry.exceptions import StrawberryInputCoercionError
from strawberry.file_uploads import Upload
from strawberry.file_uploads.scalars import UploadDefinition
from strawberry.schema.types.base_scalars import DateTimeDefinition
from strawberry.types.scalar import ScalarDefinition

ByteCount = NewType("ByteCount", int)

MAX_BYTE_COUNT = 2**53 - 1  # the largest integer a JavaScript client reads exactly


def _parse_byte_count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("ByteCount must be a non-negative integer or a string of digits")
    number = int(value)
    if not 0 <= number <= MAX_BYTE_COUNT:
        raise ValueError("ByteCount must be between 0 and 2^53 - 1")
    return number


DATETIME_EXPECTED = "Expected an RFC 3339 date and time with its UTC offset, e.g. 2026-03-01T12:00:00+00:00."


def _parse_datetime(value: object) -> datetime:
    """Strawberry's DateTime parsing, with one clear line when it fails: its own detail is the
    parser's internals ("invalid literal for int() with base 10: b'sqli'")."""
    try:
        return cast(datetime, DateTimeDefinition.parse_value(value))  # type: ignore[misc]
    except StrawberryInputCoercionError:
        raise StrawberryInputCoercionError(
            f"Value cannot represent a DateTime: {json.dumps(str(value))}. {DATETIME_EXPECTED}"
        ) from None


# The built-in DateTime and Upload, described for code generators (their own descriptions are
# not printed). Same names and output as before; DateTime's parse errors say what is expected.
DATETIME = dataclasses.replace(
    DateTimeDefinition,
    parse_value=_parse_datetime,
    description="A point in time as an RFC 3339 string with its UTC offset, e.g. 2026-03-01T12:00:00.123456+00:00 "
    "(a TypeScript client maps it to string).",
    specified_by_url="https://www.rfc-editor.org/rfc/rfc3339",
)
UPLOAD = dataclasses.replace(
    UploadDefinition,
    description="A file sent in a GraphQL multipart request; input only (a TypeScript client maps it to File).",
    specified_by_url="https://github.com/jaydenseric/graphql-multipart-request-spec",
)

SCALARS: dict[object, ScalarDefinition] = {
    datetime: DATETIME,
    Upload: UPLOAD,
    ByteCount: strawberry.scalar(
        name="ByteCount",
        description="A number of bytes as a JSON integer; unlike Int it may exceed 2^31 - 1 (exact up to 2^53 - 1).",
        serialize=int,
        parse_value=_parse_byte_count,
    ),
}
