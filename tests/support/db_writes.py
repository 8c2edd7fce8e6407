"""Hold a test server's database from writes for a while, from outside the server: what it
keeps in memory meanwhile (log lines not yet stored, a restore point about to be saved) is
then certain to be only in memory, so a test can SIGKILL it or release it at an exact point."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager

from sqlalchemy.engine import make_url

from tests.support.server_process import ServerCommon


@contextmanager
def writes_blocked(server: ServerCommon, *tables: str) -> Iterator[None]:
    """No write to `tables` commits until the block ends (SQLite: no write at all, its lock is
    the whole file; PostgreSQL: only those tables, reads go on). Returns once the lock is held,
    i.e. after any write already under way has committed. It may be entered on one thread
    and left on another."""
    url = make_url(server.fresh_database().url)
    if url.get_backend_name() == "sqlite":
        assert url.database
        with closing(
            sqlite3.connect(url.database, timeout=60, isolation_level=None, check_same_thread=False)
        ) as connection:
            connection.execute("BEGIN IMMEDIATE")  # the write lock: the server's writers wait
            try:
                yield
            finally:
                connection.execute("ROLLBACK")
        return
    import psycopg

    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn) as connection:  # a transaction until the block ends
        for table in tables:
            # SHARE mode: SELECT goes on, INSERT/UPDATE/DELETE wait for the end of this transaction.
            connection.execute(f'LOCK TABLE "{table}" IN SHARE MODE')
        try:
            yield
        finally:
            connection.rollback()
