"""Telling a full disk apart from other storage errors: files (ENOSPC), SQLite, PostgreSQL."""

from __future__ import annotations

import errno
import sqlite3

from sqlalchemy.exc import DBAPIError

from server.model.errors import StorageFull

FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
SQLITE_FULL = 13  # the primary result code; extended codes keep it in the low byte
PG_DISK_FULL = "53100"  # SQLSTATE disk_full


def is_storage_full(error: BaseException) -> bool:
    """Whether `error`, or what it wraps or was raised from, says the storage is full."""
    return _full_cause(error) is not None


def _full_cause(error: BaseException) -> BaseException | None:
    seen: set[int] = set()
    todo: list[BaseException | None] = [error]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if _says_full(current):
            return current
        todo += [getattr(current, "orig", None), current.__cause__, current.__context__]
    return None


def _says_full(error: BaseException) -> bool:
    if isinstance(error, OSError):
        return error.errno in FULL_ERRNOS
    if isinstance(error, sqlite3.Error):
        code = getattr(error, "sqlite_errorcode", None)
        return (code is not None and code & 0xFF == SQLITE_FULL) or "database or disk is full" in str(error)
    # psycopg.Error carries the server's SQLSTATE; psycopg.errors.DiskFull is 53100.
    return getattr(error, "sqlstate", None) == PG_DISK_FULL


def full_detail(error: BaseException) -> str:
    """The short reason the full disk gave, e.g. 'No space left on device'."""
    cause = _full_cause(error) or error
    if isinstance(cause, OSError):
        return cause.strerror or str(cause)
    sqlstate = getattr(cause, "sqlstate", None)
    text = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
    return f"{text} (SQLSTATE {sqlstate})" if sqlstate else text


def database_full(error: BaseException) -> StorageFull | None:
    """A StorageFull naming the database, when a database error says it is full."""
    if isinstance(error, DBAPIError | sqlite3.Error) and is_storage_full(error):
        return StorageFull("the database", full_detail(error))
    return None


def files_full(error: BaseException, what: str) -> StorageFull | None:
    """A StorageFull naming `what` (e.g. 'the content store'), when a file write hit a full disk."""
    if is_storage_full(error):
        return StorageFull(what, full_detail(error))
    return None
