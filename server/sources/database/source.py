"""Tables of a SQL database (a SQLite file or PostgreSQL) as a source.

A snapshot reads every chosen table in ONE read transaction (REPEATABLE READ, read only, on
PostgreSQL; one SQLite transaction), so the tables agree with each other. Each table
becomes `<table>.jsonl` (see table_files.py), spooled to an anonymous temporary file in
the data folder and hashed as it is written, so an unchanged table is stored once and
never read twice. Apply replaces the rows of those tables in ONE transaction: it checks
the schema first and refuses any difference before changing anything, then deletes
children before parents and inserts parents before children. SQLAlchemy's sync engine
runs in worker threads, never on the event loop.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote as url_quote

from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from server.model.errors import OperationErrorCode, OperationFailed
from server.model.records import EntryKind, ManifestEntry
from server.sources.base import CapturedItem, OpenBlob, SourceInfo
from server.sources.database.catalog import Catalog, Table, parents_first
from server.sources.database.spool import Spool
from server.sources.database.statements import insert_sql, reset_sequences, select_sql
from server.sources.database.table_files import (
    SUFFIX,
    TableFileError,
    TableHeader,
    header_line,
    read_header,
    read_rows,
    row_line,
    schema_differences,
)

CONNECT_SECONDS = 5
INSERT_BATCH = 500
# Fixed output styles, so a snapshot's text never depends on the server's settings.
PG_SESSION = (
    "SET LOCAL DateStyle = 'ISO, YMD'",
    "SET LOCAL IntervalStyle = 'postgres'",
    "SET LOCAL TimeZone = 'UTC'",
    "SET LOCAL extra_float_digits = 1",
)


class DatabaseSource:
    kind = "database"

    def __init__(
        self,
        name: str,
        url: str,
        *,
        spool_dir: Path,
        tables: Sequence[str] | None = None,
        schema: str | None = None,
    ) -> None:
        self.name = name
        self._url = make_url(url)
        shown = self._url.set(drivername=self._url.get_backend_name())
        self.location = shown.render_as_string(hide_password=True)
        self.tables = tuple(tables) if tables else None
        self.schema = schema
        self._spool_dir = spool_dir
        self._engine: Engine | None = None

    async def describe(self) -> SourceInfo:
        return await asyncio.to_thread(self._describe)

    async def capture(self) -> Sequence[CapturedItem]:
        return await asyncio.to_thread(self._capture)

    async def apply(self, entries: Sequence[ManifestEntry], open_blob: OpenBlob) -> None:
        """Replace the rows of the restore point's tables, in one transaction."""
        await asyncio.to_thread(self._apply, entries, open_blob)

    # -- connections -----------------------------------------------------------------------

    @property
    def is_sqlite(self) -> bool:
        return self._url.get_backend_name() == "sqlite"

    def engine(self) -> Engine:
        if self._engine is None:
            if self.is_sqlite:
                self._engine = create_engine("sqlite://", creator=self._open_sqlite, poolclass=NullPool)
            else:
                self._engine = create_engine(
                    self._url, poolclass=NullPool, connect_args={"connect_timeout": CONNECT_SECONDS}
                )
        return self._engine

    def _open_sqlite(self) -> sqlite3.Connection:
        path = self._url.database or ""
        if not Path(path).is_file():  # sqlite would quietly create an empty database
            raise sqlite3.OperationalError(f"database file {path} does not exist")
        # Autocommit mode: we issue BEGIN ourselves, so a snapshot is one read transaction.
        return sqlite3.connect(
            f"file:{url_quote(path)}?mode=rw",
            uri=True,
            timeout=10,
            isolation_level=None,
            check_same_thread=False,
        )

    def _connect(self) -> Connection:
        try:
            return self.engine().connect()
        except SQLAlchemyError as error:
            raise OperationFailed(
                OperationErrorCode.SOURCE_UNAVAILABLE,
                f"source {self.name!r}: database {self.location} is unreachable: {db_reason(error)}",
            ) from None

    def _begin(self, conn: Connection, *, write: bool) -> Catalog:
        if self.is_sqlite:
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
            if write:  # checked at commit: rows may arrive in any order inside the transaction
                conn.exec_driver_sql("PRAGMA defer_foreign_keys = ON")
        else:
            for statement in PG_SESSION:
                conn.exec_driver_sql(statement)
            if write:
                conn.exec_driver_sql("SET LOCAL lock_timeout = '30s'")
        return Catalog(conn, self.schema)

    def _chosen(self, catalog: Catalog) -> list[str]:
        if not catalog.schema_exists():  # else "every table" would quietly be none
            raise OperationFailed(
                OperationErrorCode.SOURCE_UNAVAILABLE, f"source {self.name!r}: schema {self.schema!r} does not exist"
            )
        present = catalog.table_names()
        if self.tables is None:
            return present
        missing = [t for t in self.tables if t not in present]
        if missing:
            raise OperationFailed(
                OperationErrorCode.SOURCE_UNAVAILABLE, f"source {self.name!r}: table {missing[0]!r} does not exist"
            )
        return list(self.tables)

    # -- snapshot ----------------------------------------------------------------------------

    def _capture(self) -> list[CapturedItem]:
        with self._connect() as conn:
            if not self.is_sqlite:
                conn = conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            try:
                catalog = self._begin(conn, write=False)
                items = [self._dump(conn, catalog, name) for name in self._chosen(catalog)]
            except DBAPIError as error:
                raise OperationFailed(
                    OperationErrorCode.SOURCE_UNAVAILABLE, f"source {self.name!r}: reading failed: {db_reason(error)}"
                ) from None
            finally:
                conn.rollback()
        return items

    def _dump(self, conn: Connection, catalog: Catalog, name: str) -> CapturedItem:
        if "/" in name or "\0" in name or name.startswith("."):
            raise OperationFailed(
                OperationErrorCode.SOURCE_UNAVAILABLE,
                f"source {self.name!r}: table name {name!r} cannot be a file name",
            )
        table = catalog.table(name)
        spool = Spool(self._spool_dir)
        spool.write(header_line(table))
        rows_written = 0
        if table.columns:
            result = conn.execution_options(stream_results=True, max_row_buffer=1000).exec_driver_sql(
                select_sql(catalog, table)
            )
            for rows in result.partitions(1000):
                for row in rows:
                    spool.write(row_line(table.columns, row))
                rows_written += len(rows)
        spool.flush()
        return CapturedItem(
            path=name + SUFFIX,
            kind=EntryKind.FILE,
            size=spool.size,
            mode=0o644,
            mtime=None,
            open=spool.open,
            digest=spool.digest,
            row_count=rows_written,
        )

    # -- apply -------------------------------------------------------------------------------

    def _apply(self, entries: Sequence[ManifestEntry], open_blob: OpenBlob) -> None:
        blobs = self._table_blobs(entries)
        headers: dict[str, TableHeader] = {}
        try:
            for table, digest in blobs.items():
                with open_blob(digest) as blob:
                    headers[table] = read_header(blob, table)
        except TableFileError as error:
            raise OperationFailed(OperationErrorCode.INVALID_ENTRY, f"source {self.name!r}: {error}") from None
        with self._connect() as conn:
            try:
                catalog = self._begin(conn, write=True)
                live = self._check_schema(conn, catalog, headers)
                self._replace_rows(conn, catalog, live, headers, blobs, open_blob)
                conn.commit()  # deferred constraint checks run here
            except BaseException as error:
                conn.rollback()
                if isinstance(error, DBAPIError):
                    raise OperationFailed(
                        OperationErrorCode.APPLY_FAILED,
                        f"source {self.name!r}: {db_reason(error)}; nothing was changed",
                    ) from None
                raise

    def _replace_rows(
        self,
        conn: Connection,
        catalog: Catalog,
        live: dict[str, Table],
        headers: dict[str, TableHeader],
        blobs: dict[str, str],
        open_blob: OpenBlob,
    ) -> None:
        order = parents_first(list(headers), self._edges(catalog))
        if not self.is_sqlite:
            conn.exec_driver_sql("SET CONSTRAINTS ALL DEFERRED")  # for DEFERRABLE ones (cycles)
        for name in reversed(order):  # children first
            with self._about(name):
                conn.exec_driver_sql(f"DELETE FROM {catalog.qualified(name)}")
        for name in order:  # parents first
            with self._about(name):
                self._insert(conn, catalog, live[name], headers[name], blobs[name], open_blob)
        if not self.is_sqlite:
            for name in order:
                with self._about(name):
                    reset_sequences(conn, catalog, live[name])

    def _table_blobs(self, entries: Sequence[ManifestEntry]) -> dict[str, str]:
        blobs: dict[str, str] = {}
        for entry in entries:
            problem = None
            if entry.kind is not EntryKind.FILE or not entry.path.endswith(SUFFIX) or "/" in entry.path:
                problem = "is not a table file"
            elif entry.sha256 is None:
                problem = "has no content"
            if problem or entry.sha256 is None:
                raise OperationFailed(
                    OperationErrorCode.INVALID_ENTRY, f"source {self.name!r}: {entry.path!r} {problem}"
                )
            blobs[entry.path.removesuffix(SUFFIX)] = entry.sha256
        return blobs

    def _check_schema(self, conn: Connection, catalog: Catalog, headers: dict[str, TableHeader]) -> dict[str, Table]:
        """The live tables, locked against writers; refuses any difference from the restore point."""
        present = catalog.table_names()
        expected = list(self.tables) if self.tables is not None else present
        if not self.is_sqlite:
            locked = [catalog.qualified(t) for t in sorted(set(headers) | set(expected)) if t in present]
            if locked:  # readers go on seeing the old rows; writers wait for the commit
                conn.exec_driver_sql(f"LOCK TABLE {', '.join(locked)} IN EXCLUSIVE MODE")
        live = {t: catalog.table(t) for t in set(headers) | set(expected) if t in present}
        problems = schema_differences(headers, live, expected)
        for child_schema, child, parent_schema, parent in catalog.foreign_keys():
            outside = child not in headers or child_schema != catalog.schema
            if parent in headers and parent_schema == catalog.schema and outside:
                problems.append(f"table {child!r}, not in this source, references {parent!r}")
        if problems:
            raise OperationFailed(
                OperationErrorCode.SCHEMA_MISMATCH,
                f"source {self.name!r}: the database does not match the restore point, nothing was "
                f"changed: {'; '.join(problems)}",
            )
        return live

    def _edges(self, catalog: Catalog) -> list[tuple[str, str]]:
        return [
            (child, parent)
            for child_schema, child, parent_schema, parent in catalog.foreign_keys()
            if child_schema == catalog.schema and parent_schema == catalog.schema
        ]

    def _insert(
        self,
        conn: Connection,
        catalog: Catalog,
        table: Table,
        header: TableHeader,
        digest: str,
        open_blob: OpenBlob,
    ) -> None:
        if not table.columns:
            return
        categories = {c.name: c.category for c in table.columns}
        types = {c.name: c.type for c in table.columns}
        names = [name for name, _ in header.columns]
        sql = insert_sql(catalog, table.name, names, types)
        with open_blob(digest) as blob:
            read_header(blob, table.name)
            batch: list[tuple[object, ...]] = []
            for row in read_rows(blob, header, categories):
                batch.append(row)
                if len(batch) >= INSERT_BATCH:
                    conn.exec_driver_sql(sql, batch)
                    batch = []
            if batch:
                conn.exec_driver_sql(sql, batch)

    @contextmanager
    def _about(self, table: str) -> Iterator[None]:
        """Name the table in whatever goes wrong while it is being replaced."""
        try:
            yield
        except DBAPIError as error:
            raise OperationFailed(
                OperationErrorCode.APPLY_FAILED,
                f"source {self.name!r}: table {table!r}: {db_reason(error)}; nothing was changed",
            ) from None
        except TableFileError as error:
            raise OperationFailed(
                OperationErrorCode.INVALID_ENTRY, f"source {self.name!r}: {error}; nothing was changed"
            ) from None

    # -- describe ----------------------------------------------------------------------------

    def _describe(self) -> SourceInfo:
        def unreachable(problem: str) -> SourceInfo:
            return SourceInfo(self.name, self.kind, False, None, location=self.location, problem=problem)

        try:
            with self._connect() as conn:
                catalog = self._begin(conn, write=False)
                tables = self._chosen(catalog)
                size = catalog.size_bytes(tables)
                conn.rollback()
        except OperationFailed as failure:
            return unreachable(failure.message.split(": ", 1)[-1])
        except SQLAlchemyError as error:
            return unreachable(db_reason(error))
        if size is None:  # SQLite: the file, with its write-ahead log
            path = self._url.database or ""
            size = sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))
        detail = f"{len(tables)} tables" + (f" in schema {self.schema}" if self.schema else "")
        return SourceInfo(self.name, self.kind, True, size, detail=detail, location=self.location)


def db_reason(error: BaseException) -> str:
    """The database's own first line about an error, without SQLAlchemy's wrapping."""
    original = getattr(error, "orig", None) or error
    text = str(original).strip()
    return text.splitlines()[0].strip() if text else type(original).__name__
