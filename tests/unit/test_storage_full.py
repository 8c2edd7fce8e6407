"""Which errors mean 'storage is full': real exception objects from the OS, SQLite and psycopg.

A PostgreSQL server with a full disk cannot be made here; psycopg's own DiskFull class (what
psycopg raises for SQLSTATE 53100) and SQLAlchemy's wrapping of it are what the server sees.
"""

from __future__ import annotations

import asyncio
import errno
import os
import sqlite3
from contextlib import closing
from pathlib import Path

import psycopg
import psycopg.errors
import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from server.model.errors import StorageFull
from server.storage.db.database import Database
from server.storage.encryption import Keyring
from server.storage.full import database_full, files_full, is_storage_full


def real_sqlite_full(tmp_path: Path) -> sqlite3.OperationalError:
    """SQLite's own SQLITE_FULL, from a database that may not grow past two pages."""
    with closing(sqlite3.connect(tmp_path / "tiny.db")) as connection:
        connection.execute("PRAGMA max_page_count = 2")
        connection.execute("CREATE TABLE t (x BLOB)")
        with pytest.raises(sqlite3.OperationalError) as raised:
            connection.execute("INSERT INTO t VALUES (?)", (b"x" * 100_000,))
    return raised.value


def test_sqlite_full_is_storage_full(tmp_path: Path) -> None:
    error = real_sqlite_full(tmp_path)
    assert "database or disk is full" in str(error)
    assert is_storage_full(error)
    wrapped = OperationalError("INSERT ...", {}, error)
    full = database_full(wrapped)
    assert isinstance(full, StorageFull) and full.code == "STORAGE_FULL"
    assert full.message == "storage is full: could not write to the database: database or disk is full"


def test_postgresql_disk_full_is_storage_full() -> None:
    error = psycopg.errors.lookup("53100")('could not extend file "base/16384/16385": No space left on device')
    assert isinstance(error, psycopg.errors.DiskFull) and error.sqlstate == "53100"
    full = database_full(OperationalError("INSERT ...", {}, error))
    assert full is not None
    assert full.message.startswith("storage is full: could not write to the database: could not extend file")
    assert full.message.endswith("(SQLSTATE 53100)")


def test_other_errors_are_not_storage_full(tmp_path: Path) -> None:
    assert not is_storage_full(psycopg.errors.lookup("53200")("out of memory"))  # out_of_memory: not disk
    assert not is_storage_full(psycopg.errors.UniqueViolation("duplicate key"))
    with closing(sqlite3.connect(tmp_path / "x.db")) as connection, pytest.raises(sqlite3.OperationalError) as raised:
        connection.execute("SELECT * FROM missing")
    assert not is_storage_full(raised.value)
    assert files_full(PermissionError(errno.EACCES, "Permission denied", "/x"), "the content store") is None


def test_enospc_names_what_could_not_be_written() -> None:
    error = OSError(errno.ENOSPC, "No space left on device")
    try:
        try:
            raise error
        except OSError as inner:
            raise RuntimeError("while writing") from inner
    except RuntimeError as outer:
        full = files_full(outer, "the local copies folder (/srv/copies)")
    assert full is not None
    assert (
        full.message
        == "storage is full: could not write to the local copies folder (/srv/copies): No space left on device"
    )


def test_database_write_raises_storage_full(tmp_path: Path) -> None:
    """A write transaction that hits SQLITE_FULL comes out as StorageFull, rolled back."""

    async def run() -> None:
        db = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
        try:
            async with db.write() as session:
                await session.execute(text("CREATE TABLE t (x BLOB)"))
            with pytest.raises(StorageFull) as raised:
                async with db.write() as session:
                    await session.execute(text("PRAGMA max_page_count = 3"))
                    await session.execute(text("INSERT INTO t VALUES (randomblob(100000))"))
            assert raised.value.what == "the database"
            async with db.read() as session:
                assert (await session.execute(text("SELECT count(*) FROM t"))).scalar() == 0
        finally:
            await db.close()

    asyncio.run(run())


class _FullAfter:
    """An output that refuses bytes past `room` as a full disk does."""

    def __init__(self, room: int) -> None:
        self.room = room

    def write(self, data: bytes) -> int:
        self.room -= len(data)
        if self.room < 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        return len(data)


def test_a_full_disk_under_age_is_the_disk_error_not_a_key_or_damage(tmp_path: Path) -> None:
    """pyrage reports a failed write as its own EncryptError (or, decrypting, as what reads
    as damaged content): the keyring gives the OSError itself, which files_full names."""
    keyring = Keyring(tmp_path)
    plain = tmp_path / "copy.zip"
    plain.write_bytes(os.urandom(512 * 1024))
    with pytest.raises(OSError) as encrypting:
        keyring.encrypt(plain, _FullAfter(100_000))  # type: ignore[arg-type]
    encrypted = tmp_path / "copy.zip.age"
    with encrypted.open("wb") as out:
        keyring.encrypt(plain, out)
    with pytest.raises(OSError) as decrypting:
        keyring.decrypt(encrypted, _FullAfter(100_000))  # type: ignore[arg-type]
    for raised in (encrypting, decrypting):
        assert files_full(raised.value, "the local copies folder") is not None, raised.value
