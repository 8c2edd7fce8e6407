"""The async engine, sessions for reading and writing, and schema migrations."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, nullcontext
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker, create_async_engine

from server.storage.full import database_full

# A constraint (a unique name, say) refused a write: services catch it by this name, so
# nothing above storage imports SQLAlchemy.
ConstraintViolation = IntegrityError

MIGRATIONS = Path(__file__).with_name("migrations")


def driver_urls(url: str) -> tuple[str, str]:
    """(async URL, sync URL) for a user's database URL, choosing our drivers."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return (
            parsed.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=False),
            parsed.set(drivername="sqlite").render_as_string(hide_password=False),
        )
    if backend == "postgresql":
        psycopg = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
        return psycopg, psycopg
    raise ValueError(f"unsupported database {backend!r}: use sqlite:/// or postgresql://")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run beside the writer; busy_timeout makes a second writer wait, not fail.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class Database:
    """One engine per server; a session per unit of work, never shared between tasks."""

    def __init__(self, url: str) -> None:
        self.async_url, self.sync_url = driver_urls(url)
        self.is_sqlite = self.async_url.startswith("sqlite")
        options: dict[str, Any] = {"pool_pre_ping": not self.is_sqlite}
        self.engine = create_async_engine(self.async_url, **options)
        if self.is_sqlite:
            Path(make_url(self.sync_url).database or "").parent.mkdir(parents=True, exist_ok=True)
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # SQLite allows one writer: serialising our own writers here means a transaction
        # that reads and then writes never meets SQLITE_BUSY from a sibling task.
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        self._version_connection: sqlite3.Connection | None = None

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as session:
            yield session

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        """A plain connection for a Core read: no ORM session, for lookups on every request."""
        async with self.engine.connect() as connection:
            yield connection

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A transaction that commits on success and rolls back on any exception.

        A database that is full raises StorageFull (a clear code), not a driver error."""
        try:
            async with self._write_lock or nullcontext(), self._sessions() as session, session.begin():
                yield session
        except Exception as error:
            if (full := database_full(error)) is not None:
                raise full from error
            raise

    def data_version(self) -> int | None:
        """A number that changes whenever anyone, in this process or another, commits a write
        to the database; None where that cannot be known cheaply (PostgreSQL, or an error).

        It lets a cache of rows that another process may change (the token CLI writes tokens)
        stay exact: an entry is good while the number it was read under still holds. On
        SQLite this is `PRAGMA data_version` on a connection of its own: a read of the WAL
        index in shared memory, a few microseconds, so it may run on the event loop."""
        if not self.is_sqlite:
            return None
        try:
            if self._version_connection is None:
                path = make_url(self.sync_url).database or ""
                if path in ("", ":memory:") or path.startswith("file:"):
                    return None  # a database of its own per connection, or a URI: not ours to follow
                # Never waits for a lock (busy_timeout 0): a busy moment answers None, and the
                # caller reads the database the usual way instead.
                self._version_connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            return int(self._version_connection.execute("PRAGMA data_version").fetchone()[0])
        except sqlite3.Error:
            return None

    def migrate(self) -> None:
        """Bring the schema to the newest migration (blocking; run it in a thread)."""
        engine = create_engine(self.sync_url)
        if self.is_sqlite:
            event.listen(engine, "connect", _sqlite_pragmas)
        try:
            with engine.begin() as connection:
                config = Config()
                config.set_main_option("script_location", str(MIGRATIONS))
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
        finally:
            engine.dispose()

    async def close(self) -> None:
        if self._version_connection is not None:
            self._version_connection.close()
            self._version_connection = None
        await self.engine.dispose()
