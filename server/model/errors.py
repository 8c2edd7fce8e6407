"""Expected failures, each with a stable code that clients can branch on."""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Iterator, Sequence

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


class DomainError(Exception):
    """An expected failure: shown to the client as a userError with this code."""

    code = "INVALID_INPUT"

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
    code = "NOT_FOUND"


class InvalidInput(DomainError):
    code = "INVALID_INPUT"


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
    code = "BUSY"


class Pinned(DomainError):
    """A pinned restore point: kept until someone unpins it."""

    code = "PINNED"


class ConfirmationRequired(DomainError):
    code = "CONFIRMATION_REQUIRED"


class Conflict(DomainError):
    """The configuration is no longer the one the caller looked at (applyRestorePoint(expectedFingerprint:))."""

    code = "CONFLICT"


class InvalidArchive(DomainError):
    code = "INVALID_ARCHIVE"


class OperationErrorCode(enum.StrEnum):
    """Every code a failed or interrupted operation can carry (`Operation.error.code`).

    The schema keeps the field a String so that a new code is not a breaking change; README's
    table of codes documents each of these (a test checks both ways).
    """

    APPLY_FAILED = "APPLY_FAILED"
    CONFLICT = "CONFLICT"
    CONTENT_DAMAGED = "CONTENT_DAMAGED"
    COPY_CHECK_FAILED = "COPY_CHECK_FAILED"
    INTERNAL = "INTERNAL"
    INTERRUPTED = "INTERRUPTED"
    INTERRUPTED_BEFORE_CHANGES = "INTERRUPTED_BEFORE_CHANGES"
    INVALID_ARCHIVE = "INVALID_ARCHIVE"
    INVALID_ENTRY = "INVALID_ENTRY"
    JOURNAL_UNREADABLE = "JOURNAL_UNREADABLE"
    KEY_MISSING = "KEY_MISSING"
    LOCATION_UNAVAILABLE = "LOCATION_UNAVAILABLE"
    NOT_FOUND = "NOT_FOUND"
    RESTART_FAILED = "RESTART_FAILED"
    RESTART_TIMEOUT = "RESTART_TIMEOUT"
    ROLLBACK_FAILED = "ROLLBACK_FAILED"
    SCHEMA_MISMATCH = "SCHEMA_MISMATCH"
    SOURCE_CHANGED = "SOURCE_CHANGED"
    SOURCE_UNAVAILABLE = "SOURCE_UNAVAILABLE"
    STORAGE_FAILED = "STORAGE_FAILED"
    STORAGE_FULL = "STORAGE_FULL"
    TEST_FAILURE = "TEST_FAILURE"
    UNKNOWN_SOURCE = "UNKNOWN_SOURCE"

    @classmethod
    def stored(cls, value: str) -> OperationErrorCode:
        """The code for a value read back from the database or a journal, older names included."""
        return cls(_RENAMED.get(value, value))


# Codes earlier versions wrote, and what they are called now.
_RENAMED = {
    "CORRUPT_CONTENT": OperationErrorCode.CONTENT_DAMAGED,
    "RESTORE_POINT_DAMAGED": OperationErrorCode.CONTENT_DAMAGED,
}


class LocationUnreachable(DomainError):
    """A backup location cannot be reached or refuses us (the message names it)."""

    code = "LOCATION_UNAVAILABLE"  # a UserErrorCode here; the same name as the OperationErrorCode


class StorageFull(DomainError):
    """A write failed because the disk (or the database server) has no space left."""

    code = "STORAGE_FULL"  # a UserErrorCode here; the same name as OperationErrorCode.STORAGE_FULL

    def __init__(self, what: str, detail: str, *, field: str | None = None) -> None:
        super().__init__(f"storage is full: could not write to {what}: {detail}", field=field)
        self.what = what


class OperationFailed(Exception):
    """Raised inside an operation's job to end it FAILED with a stable error code."""

    def __init__(self, code: OperationErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = OperationErrorCode(code)  # a bare string that is no code fails here, at once
        self.message = message
