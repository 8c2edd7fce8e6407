"""Expected failures, each with a stable code that clients can branch on, and every code itself.

The codes are three enums: UserErrorCode (a mutation's `userErrors`), OperationErrorCode (a
failed operation's `error`) and RequestErrorCode (a top-level GraphQL or HTTP error's
`extensions.code`). The string under each member says what it means: `make error-codes`
(server/api/error_table.py) writes docs/reference/error-codes.md from them, and a test fails
when that file and this module drift apart.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Iterator, Sequence
from typing import ClassVar

# What a message may quote of a value the client sent, and how long a whole message may be: an
# invalid 10,000-character name is named by its start and its length, never echoed back whole.
QUOTED_CHARACTERS = 64
MAX_MESSAGE_CHARACTERS = 1000


def quoted(value: object, limit: int = QUOTED_CHARACTERS) -> str:
    """repr() of a value a client sent, for a message: past `limit` characters, its start and its length."""
    text = value if isinstance(value, str) else str(value)
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text)} characters)"


class UserErrorCode(enum.StrEnum):
    """Why a mutation did not do what it was asked (`userErrors[].code`); a query or subscription
    refusing its arguments gives the same code as its top-level error's `extensions.code`.

    GraphQL's enum UserErrorCode is this enum (registered in server/api/errors.py).
    """

    NOT_FOUND = "NOT_FOUND"
    """No object has that id (or name): it never existed, or it was deleted meanwhile."""
    INVALID_INPUT = "INVALID_INPUT"
    """An argument is not acceptable; `field` names it and the message says why. A form gets one
    userError per problem, all at once."""
    BUSY = "BUSY"
    """Not now: an apply holds the system, the object is in use by a running operation (an export,
    an apply), or a schedule's previous run still goes. Try again once it has finished."""
    CONFIRMATION_REQUIRED = "CONFIRMATION_REQUIRED"
    """applyRestorePoint's `confirm` does not repeat `restorePointId`; nothing was started."""
    INVALID_ARCHIVE = "INVALID_ARCHIVE"
    """An uploaded or imported file is no valid local copy (the message names the problem);
    nothing is kept."""
    STORAGE_FULL = "STORAGE_FULL"
    """A disk (or the database) is full; the message names what could not be written."""
    LOCATION_UNAVAILABLE = "LOCATION_UNAVAILABLE"
    """A backup location cannot be reached or refuses the credentials (the message names it)."""
    CONFLICT = "CONFLICT"
    """The configuration changed since the caller looked at it (applyRestorePoint's
    `expectedFingerprint` is not the configuration's now); nothing was started."""
    PINNED = "PINNED"
    """The restore point is pinned: it is never deleted until someone unpins it."""
    KEY_MISSING = "KEY_MISSING"
    """An encrypted local copy read in place (its items, one item's download) is encrypted to no
    key this server holds; the message names the server's identity and recovery recipients
    (`backups key import` adds one)."""
    UNKNOWN_SOURCE = "UNKNOWN_SOURCE"
    """An item named (applyRestorePoint(items:)) is of a source the restore point holds and this
    server no longer configures; nothing was started."""
    CONTENT_DAMAGED = "CONTENT_DAMAGED"
    """The restore point is known to be damaged (its last verification found content that does
    not match its SHA-256, or missing, and no good copy to repair it from); an export or apply of
    it is refused up front. Repair it (verifyBackups with a good copy) or use another one."""


class DomainError(Exception):
    """An expected failure: shown to the client as a userError with this code (a mutation), or
    as a top-level error with it as `extensions.code` (a query or subscription). The errors of a
    diff carry the OperationErrorCode of the same failure in an operation."""

    code: ClassVar[UserErrorCode | OperationErrorCode] = UserErrorCode.INVALID_INPUT

    def __init__(self, message: str, *, field: str | None = None) -> None:
        if len(message) > MAX_MESSAGE_CHARACTERS:  # whatever a message quotes, it stays readable
            message = message[: MAX_MESSAGE_CHARACTERS - 16] + "... (shortened)"
        super().__init__(message)
        self.message = message
        self.field = field

    def each(self) -> tuple[DomainError, ...]:
        """The problems this error reports, one userError each (itself, unless it gathers several)."""
        return (self,)


class NotFound(DomainError):
    code = UserErrorCode.NOT_FOUND


class InvalidInput(DomainError):
    code = UserErrorCode.INVALID_INPUT


class InvalidInputs(InvalidInput):
    """Several problems with one input, each with its field: a form shows them all at once."""

    def __init__(self, problems: Sequence[InvalidInput]) -> None:
        super().__init__("; ".join(problem.message for problem in problems), field=problems[0].field)
        self.problems = tuple(problems)

    def each(self) -> tuple[DomainError, ...]:
        return self.problems


class InputProblems:
    """Runs independent checks of one input and gathers what they refuse, to report it all at once."""

    def __init__(self) -> None:
        self.found: list[InvalidInput] = []

    @contextlib.contextmanager
    def check(self) -> Iterator[None]:
        """A block whose INVALID_INPUT is noted rather than raised."""
        try:
            yield
        except InvalidInput as refused:
            self.found.extend(problem for problem in refused.each() if isinstance(problem, InvalidInput))

    def raise_any(self) -> None:
        """Raise what was found: the one problem, or every one together."""
        if len(self.found) == 1:
            raise self.found[0]
        if self.found:
            raise InvalidInputs(self.found)


class Busy(DomainError):
    code = UserErrorCode.BUSY


class Pinned(DomainError):
    """A pinned restore point: kept until someone unpins it."""

    code = UserErrorCode.PINNED


class ConfirmationRequired(DomainError):
    code = UserErrorCode.CONFIRMATION_REQUIRED


class Conflict(DomainError):
    """The configuration is no longer the one the caller looked at (applyRestorePoint(expectedFingerprint:))."""

    code = UserErrorCode.CONFLICT


class InvalidArchive(DomainError):
    code = UserErrorCode.INVALID_ARCHIVE


class KnownDamaged(DomainError):
    """A restore point whose last verification found it DAMAGED or MISSING."""

    code = UserErrorCode.CONTENT_DAMAGED


class CopyKeyMissing(DomainError):
    """An encrypted local copy this server holds no key for."""

    code = UserErrorCode.KEY_MISSING


class OperationErrorCode(enum.StrEnum):
    """Every code a failed or interrupted operation can carry (`Operation.error.code`, and
    `errorCode` as GraphQL's enum OperationErrorCode, which adds OTHER).

    The schema keeps the field a String so that a new code is not a breaking change; docs/reference/error-codes.md,
    generated from this enum, documents each of these (a test checks both ways).
    """

    APPLY_FAILED = "APPLY_FAILED"
    """An apply could not replace a source; the configuration from before was restored."""
    CONFLICT = "CONFLICT"
    """An apply with `expectedFingerprint` found the configuration changed since the preview, once
    maintenance had begun; nothing was changed."""
    CONTENT_DAMAGED = "CONTENT_DAMAGED"
    """Stored content does not match its SHA-256 (export, apply, a diff); nothing was written or
    changed. Earlier versions said CORRUPT_CONTENT or RESTORE_POINT_DAMAGED (read back as this)."""
    COPY_CHECK_FAILED = "COPY_CHECK_FAILED"
    """An export's copy, read back, does not describe its restore point in full (its manifest in
    the database is damaged); no file is left."""
    INTERNAL = "INTERNAL"
    """An unexpected error; the details are in the server log."""
    INTERRUPTED = "INTERRUPTED"
    """The server stopped before the operation finished (status INTERRUPTED)."""
    INTERRUPTED_BEFORE_CHANGES = "INTERRUPTED_BEFORE_CHANGES"
    """The server stopped during an apply before it changed anything."""
    INVALID_ARCHIVE = "INVALID_ARCHIVE"
    """An imported local copy is not a valid copy (the message names the problem)."""
    INVALID_ENTRY = "INVALID_ENTRY"
    """An item of a restore point cannot be applied to its source (unsafe path, not JSON, ...)."""
    JOURNAL_UNREADABLE = "JOURNAL_UNREADABLE"
    """The server stopped during an apply and its journal could not be read back."""
    KEY_MISSING = "KEY_MISSING"
    """An encrypted copy (import, fetch) is encrypted to no key this server holds; the message names
    the server's identity and recovery recipients; nothing is kept (`backups key import`)."""
    LOCATION_UNAVAILABLE = "LOCATION_UNAVAILABLE"
    """A backup location cannot be reached or refuses the credentials (the message names it); an
    upload leaves no object or file there, a fetch no local copy."""
    NOT_FOUND = "NOT_FOUND"
    """What the operation works on was deleted under it, or its file cannot be opened."""
    RESTART_FAILED = "RESTART_FAILED"
    """The restart at the end of an apply failed."""
    RESTART_TIMEOUT = "RESTART_TIMEOUT"
    """The restart at the end of an apply took too long."""
    ROLLBACK_FAILED = "ROLLBACK_FAILED"
    """An apply failed and restoring the configuration from before failed too."""
    SCHEMA_MISMATCH = "SCHEMA_MISMATCH"
    """A database source's tables differ from the restore point's."""
    SOURCE_CHANGED = "SOURCE_CHANGED"
    """A source changed while it was read (for a restore point, or a diff)."""
    SOURCE_UNAVAILABLE = "SOURCE_UNAVAILABLE"
    """A source cannot be read (or written)."""
    STORAGE_FAILED = "STORAGE_FAILED"
    """The content store could not store an item (permissions, an I/O error)."""
    STORAGE_FULL = "STORAGE_FULL"
    """A disk (or the database) is full; the message names what could not be written."""
    TEST_FAILURE = "TEST_FAILURE"
    """Test only: BACKUPS_TEST_FAIL_AT made the apply fail."""
    UNKNOWN_SOURCE = "UNKNOWN_SOURCE"
    """A restore point holds a source not configured on this server."""

    @classmethod
    def stored(cls, value: str) -> OperationErrorCode:
        """The code for a value read back from the database or a journal, older names included."""
        return cls(_RENAMED.get(value, value))


# Codes earlier versions wrote, and what they are called now.
_RENAMED = {
    "CORRUPT_CONTENT": OperationErrorCode.CONTENT_DAMAGED,
    "RESTORE_POINT_DAMAGED": OperationErrorCode.CONTENT_DAMAGED,
}


class RequestErrorCode(enum.StrEnum):
    """The `extensions.code` of a top-level error that no domain error gave: the request, the
    caller or the document is refused (HTTP answers carry it in the same JSON shape). A domain
    error a query or subscription refuses with gives its own code there instead."""

    UNAUTHENTICATED = "UNAUTHENTICATED"
    """No API token, or one that is expired, revoked or unknown (the message says which). HTTP 401
    before anything runs; a websocket is closed with 4403."""
    FORBIDDEN = "FORBIDDEN"
    """The token's role is too small for the field (each root field's role is in the schema's
    @requiresRole)."""
    GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
    """The document is not GraphQL (a syntax error)."""
    GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
    """The document does not fit the schema (an unknown field, ...) or exceeds a limit: depth 12,
    2,000 tokens, 30 aliases."""
    BAD_USER_INPUT = "BAD_USER_INPUT"
    """A variable's value the schema refuses: the wrong type, a ByteCount out of range."""
    BAD_REQUEST = "BAD_REQUEST"
    """The request itself is malformed: a subscription over plain HTTP, a multipart body or `map`
    that does not parse or fit the spec."""
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    """HTTP 413: the body (or a multipart part that is not a file) is over BACKUPS_MAX_REQUEST_BYTES,
    or an upload over its own limit."""
    TOO_MANY_PARTS = "TOO_MANY_PARTS"
    """HTTP 400: a multipart request with more parts than a GraphQL multipart request needs."""
    REQUEST_TIMEOUT = "REQUEST_TIMEOUT"
    """HTTP 408: the client sent its request too slowly."""
    INTERNAL = "INTERNAL"
    """An unexpected error, shown as `Unexpected error.`; the details go to the server log only."""


class LocationUnreachable(DomainError):
    """A backup location cannot be reached or refuses us (the message names it)."""

    code = UserErrorCode.LOCATION_UNAVAILABLE  # the same name as the OperationErrorCode


class StorageFull(DomainError):
    """A write failed because the disk (or the database server) has no space left."""

    code = UserErrorCode.STORAGE_FULL  # the same name as OperationErrorCode.STORAGE_FULL

    def __init__(self, what: str, detail: str, *, field: str | None = None) -> None:
        super().__init__(f"storage is full: could not write to {what}: {detail}", field=field)
        self.what = what


class OperationFailed(Exception):
    """Raised inside an operation's job to end it FAILED with a stable error code."""

    def __init__(self, code: OperationErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = OperationErrorCode(code)  # a bare string that is no code fails here, at once
        self.message = message
