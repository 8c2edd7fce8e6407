"""Custom scalars. ByteCount exists because GraphQL's Int stops at 2^31 - 1."""

from __future__ import annotations

from typing import NewType

import strawberry
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


SCALARS: dict[object, ScalarDefinition] = {
    ByteCount: strawberry.scalar(
        name="ByteCount",
        description="A number of bytes as a JSON integer; unlike Int it may exceed 2^31 - 1 "
        "(exact up to 2^53 - 1).",
        serialize=int,
        parse_value=_parse_byte_count,
    )
}
