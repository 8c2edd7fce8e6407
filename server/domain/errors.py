"""Expected failures, each with a stable code that clients can branch on."""

from __future__ import annotations


class DomainError(Exception):
    """An expected failure: shown to the client as a userError with this code."""

    code = "INVALID_INPUT"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(DomainError):
    code = "NOT_FOUND"


class InvalidInput(DomainError):
    code = "INVALID_INPUT"


class Busy(DomainError):
    code = "BUSY"


class ConfirmationRequired(DomainError):
    code = "CONFIRMATION_REQUIRED"


class InvalidArchive(DomainError):
    code = "INVALID_ARCHIVE"


class StorageFull(DomainError):
    """A write failed because the disk (or the database server) has no space left."""

    code = "STORAGE_FULL"

    def __init__(self, what: str, detail: str, *, field: str | None = None) -> None:
        super().__init__(f"storage is full: could not write to {what}: {detail}", field=field)
        self.what = what


class OperationFailed(Exception):
    """Raised inside an operation's job to end it FAILED with a stable error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
