"""One server per database, as per data folder: two servers on one database (each with its
own data folder) would mark each other's running operations INTERRUPTED at start-up and
collect blobs the other's restore points need.

PostgreSQL: a session-level advisory lock, held on a connection of its own for the process's
life; the server goes and so does the lock, however it dies. Its application_name carries
our pid and host, so the refused server can name the holder. SQLite: a kernel lock (flock) on
a file beside the database file, as for the data folder.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from server.storage.data_dir_lock import DataDirLock, LockHeld, lock_file

# pg_try_advisory_lock(key1, key2): key1 is "back" in ASCII, our namespace; key2 the lock.
_ADVISORY_NAMESPACE = 0x6261636B
_SERVER_LOCK = 1


class DatabaseInUse(Exception):
    """Another live server holds the database's lock."""


class DatabaseUnreachable(Exception):
    """The database did not answer (or refused us) when the lock was asked for."""


class DatabaseLock:
    """The held lock; released with the process (or by `release`)."""

    def __init__(self, held: DataDirLock | Any) -> None:
        self._held = held

    def release(self) -> None:
        if self._held is not None:
            if isinstance(self._held, DataDirLock):
                self._held.release()
            else:
                self._held.close()  # closing the session ends the advisory lock
            self._held = None


def lock_database(url: str) -> DatabaseLock:
    """Take the database's lock, or raise DatabaseInUse naming the server that holds it."""
    parsed = make_url(url)
    shown = parsed.render_as_string(hide_password=True)
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database or "")
        if not parsed.database or parsed.database == ":memory:":
            return DatabaseLock(None)
        path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = path.with_name(path.name + ".server.lock")
        try:
            return DatabaseLock(lock_file(lock_path))
        except LockHeld as held:
            raise DatabaseInUse(_refusal(shown, held.holder, f"lock file {lock_path}")) from None
    return DatabaseLock(_advisory_lock(parsed, shown))


def _advisory_lock(parsed: Any, shown: str) -> Any:
    import psycopg

    me = f"backups-api pid {os.getpid()} on host {socket.gethostname()}"
    dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        connection = psycopg.connect(dsn, autocommit=True, application_name=me[:63], connect_timeout=10)
    except psycopg.OperationalError as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DatabaseUnreachable(f"cannot reach the database {shown}: {reason}") from None
    try:
        got = connection.execute("SELECT pg_try_advisory_lock(%s, %s)", (_ADVISORY_NAMESPACE, _SERVER_LOCK)).fetchone()
        if got is not None and got[0]:
            return connection
        holder = connection.execute(
            "SELECT a.application_name, a.client_addr FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %s AND l.objid = %s "
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            (_ADVISORY_NAMESPACE, _SERVER_LOCK),
        ).fetchone()
    except BaseException:
        connection.close()
        raise
    connection.close()
    if holder is None:  # it went between the two queries: say so rather than guess
        who = "a server that has just stopped; try again"
    else:
        name, address = holder
        who = (name or "pid unknown").removeprefix("backups-api ") + (f", connected from {address}" if address else "")
    raise DatabaseInUse(_refusal(shown, who, "a PostgreSQL advisory lock"))


def _refusal(shown: str, holder: str, how: str) -> str:
    return (
        f"the database {shown} is in use by another server ({holder}; {how}): "
        "stop it first, or give this one another BACKUPS_DATABASE_URL"
    )
