"""How failures reach clients: userErrors for expected ones, coded GraphQL errors otherwise."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import strawberry
from graphql import GraphQLError, GraphQLSyntaxError

from server.model import errors as codes
from server.model.errors import DomainError, RequestErrorCode
from server.storage.full import files_full

log = logging.getLogger("server.api")
T = TypeVar("T")


# The model's enum is GraphQL's UserErrorCode: strawberry.enum registers the class itself.
strawberry.enum(codes.UserErrorCode)
UserErrorCode = codes.UserErrorCode


@strawberry.type(description="An expected failure, with a code a client can branch on.")
class UserError:
    code: UserErrorCode
    message: str
    field: str | None = strawberry.field(
        default=None, description="The argument the error is about, when there is one."
    )

    @classmethod
    def from_domain(cls, error: DomainError) -> UserError:
        return cls(code=UserErrorCode(error.code), message=error.message, field=error.field)


class ClientError(GraphQLError):
    """A top-level GraphQL error meant for the client: kept unmasked, with extensions.code."""

    def __init__(self, message: str, code: str) -> None:
        # `code`: a member of one of the model's code enums, sent as the plain string it is.
        super().__init__(message, extensions={"code": str(code)})


def to_client_error(error: DomainError) -> ClientError:
    return ClientError(error.message, error.code)


async def attempt(call: Callable[[], Awaitable[T]]) -> tuple[T | None, list[UserError]]:
    """Run a service call, turning an expected failure into userErrors."""
    try:
        return await call(), []
    except DomainError as error:
        return None, [UserError.from_domain(problem) for problem in error.each()]
    except Exception as error:
        # A full disk the call did not name itself is still a full disk, not "Unexpected error."
        if (full := files_full(error, "the disk")) is None:
            raise
        log.warning("%s", full.message)
        return None, [UserError.from_domain(full)]


# extensions.code of a top-level error that carries none of its own, as Apollo-style clients expect.
PARSE_FAILED = RequestErrorCode.GRAPHQL_PARSE_FAILED
VALIDATION_FAILED = RequestErrorCode.GRAPHQL_VALIDATION_FAILED
BAD_USER_INPUT = RequestErrorCode.BAD_USER_INPUT
INTERNAL = RequestErrorCode.INTERNAL


def with_code(error: GraphQLError) -> GraphQLError:
    """`error` with an extensions.code: its own, else one for what kind of error it is."""
    if (error.extensions or {}).get("code"):
        return error
    original: Any = error.original_error
    code: str
    if isinstance(error, GraphQLSyntaxError):
        code = PARSE_FAILED
    elif isinstance(original, DomainError):
        code = original.code
    elif should_mask(error):
        code = INTERNAL  # masked: the client learns only that it was the server's fault
    elif error.message.startswith("Variable '$") or original is not None:
        # A variable's value the schema refuses (a bad ByteCount, a wrong type): the caller's input.
        code = BAD_USER_INPUT
    else:
        code = VALIDATION_FAILED  # no original error: a validation rule refused the document
    error.extensions = {**(error.extensions or {}), "code": str(code)}
    return error


def should_mask(error: GraphQLError) -> bool:
    """Mask anything unexpected; keep syntax, validation and our own client errors."""
    original: Any = error.original_error
    return original is not None and not isinstance(original, GraphQLError | DomainError)
