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

    async def apply_only(self, entries: Sequence[ManifestEntry], open_blob: OpenBlob) -> None:
        """Replace the rows of just these tables, in one transaction; the other tables keep
        theirs. Rows of another table that no longer fit (a foreign key) fail it, naming the
        constraint, and nothing is changed."""
        await asyncio.to_thread(self._apply, entries, open_blob, True)

    async def check_only(self, entries: Sequence[ManifestEntry], open_blob: OpenBlob) -> None:
        """Refuse (SCHEMA_MISMATCH) what apply_only would refuse, changing nothing."""
        await asyncio.to_thread(self._check_only, entries, open_blob)

    def _check_only(self, entries: Sequence[ManifestEntry], open_blob: OpenBlob) -> None:
        headers = self._headers(self._table_blobs(entries), open_blob)
        with self._connect() as conn:
            try:
                catalog = self._begin(conn, write=False)
                self._check_schema(conn, catalog, headers, True, lock=False)
            except DBAPIError as error:
                raise OperationFailed(
                    OperationErrorCode.SOURCE_UNAVAILABLE, f"source {self.name!r}: reading failed: {db_reason(error)}"
                ) from None
            finally:
                conn.rollback()

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

    def _headers(self, blobs: dict[str, str], open_blob: OpenBlob) -> dict[str, TableHeader]:
        headers: dict[str, TableHeader] = {}
        try:
            for table, digest in blobs.items():
                with open_blob(digest) as blob:
                    headers[table] = read_header(blob, table)
        except TableFileError as error:
            raise OperationFailed(OperationErrorCode.INVALID_ENTRY, f"source {self.name!r}: {error}") from None
        return headers

    def _apply(self, entries: Sequence[ManifestEntry], open_blob: OpenBlob, partial: bool = False) -> None:
        blobs = self._table_blobs(entries)
        headers = self._headers(blobs, open_blob)
        with self._connect() as conn:
            try:
                catalog = self._begin(conn, write=True)
                live = self._check_schema(conn, catalog, headers, partial)
                if partial and not self.is_sqlite and all(live[t].primary_key for t in headers):
                    self._merge_rows(conn, catalog, live, headers, blobs, open_blob)
                else:
                    self._replace_rows(conn, catalog, live, headers, blobs, open_blob)
                if partial and self.is_sqlite:
                    self._check_other_tables_fit(conn)
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

    def _merge_rows(
        self,
        conn: Connection,
        catalog: Catalog,
        live: dict[str, Table],
        headers: dict[str, TableHeader],
        blobs: dict[str, str],
        open_blob: OpenBlob,
    ) -> None:
        """PostgreSQL, some tables only: rows the restore point lacks are deleted and its rows
        written over by primary key, never all deleted first. Another table's rows that reference
        a kept row are then never without it (a foreign key that is not DEFERRABLE is checked at
        each statement); one that references a row that goes fails, naming its constraint."""
        order = parents_first(list(headers), self._edges(catalog))
        conn.exec_driver_sql("SET CONSTRAINTS ALL DEFERRED")
        staged: dict[str, str] = {}
        for index, name in enumerate(order):
            with self._about(name):
                staged[name] = temp = f"backups_items_{index}"
                conn.exec_driver_sql(f"CREATE TEMPORARY TABLE {temp} (LIKE {catalog.qualified(name)}) ON COMMIT DROP")
                self._insert(conn, catalog, live[name], headers[name], blobs[name], open_blob, into=temp)
        for name in reversed(order):  # children first
            with self._about(name):
                key = ", ".join(catalog.ident(k) for k in live[name].primary_key)
                conn.exec_driver_sql(
                    f"DELETE FROM {catalog.qualified(name)} WHERE ({key}) NOT IN (SELECT {key} FROM {staged[name]})"
                )
        for name in order:  # parents first
            with self._about(name):
                table = live[name]
                columns = ", ".join(catalog.ident(c.name) for c in table.columns)
                key = ", ".join(catalog.ident(k) for k in table.primary_key)
                rest = [c.name for c in table.columns if c.name not in table.primary_key]
                update = ", ".join(f"{catalog.ident(c)} = EXCLUDED.{catalog.ident(c)}" for c in rest)
                conflict = f"DO UPDATE SET {update}" if rest else "DO NOTHING"
                conn.exec_driver_sql(
                    f"INSERT INTO {catalog.qualified(name)} ({columns}) OVERRIDING SYSTEM VALUE "
                    f"SELECT {columns} FROM {staged[name]} ON CONFLICT ({key}) {conflict}"
                )
                reset_sequences(conn, catalog, table)

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

    def _check_schema(
        self,
        conn: Connection,
        catalog: Catalog,
        headers: dict[str, TableHeader],
        partial: bool = False,
        *,
        lock: bool = True,
    ) -> dict[str, Table]:
        """The live tables, locked against writers; refuses any difference from the restore point
        (`partial`: of the tables it replaces; the others are left as they are)."""
        present = catalog.table_names()
        mine = list(self.tables) if self.tables is not None else present
        expected = list(headers) if partial else mine
        if lock and not self.is_sqlite:
            locked = [catalog.qualified(t) for t in sorted(set(headers) | set(expected)) if t in present]
            if locked:  # readers go on seeing the old rows; writers wait for the commit
                conn.exec_driver_sql(f"LOCK TABLE {', '.join(locked)} IN EXCLUSIVE MODE")
        live = {t: catalog.table(t) for t in set(headers) | set(expected) if t in present}
        problems = schema_differences(headers, live, expected)
        for child_schema, child, parent_schema, parent in catalog.foreign_keys():
            outside = child not in (mine if partial else headers) or child_schema != catalog.schema
            if parent in headers and parent_schema == catalog.schema and outside:
                problems.append(f"table {child!r}, not in this source, references {parent!r}")
        if problems:
            raise OperationFailed(
                OperationErrorCode.SCHEMA_MISMATCH,
                f"source {self.name!r}: the database does not match the restore point, nothing was "
                f"changed: {'; '.join(problems)}",
            )
        return live

    def _check_other_tables_fit(self, conn: Connection) -> None:
        """SQLite checks deferred foreign keys at commit without saying which: name the first
        one the replaced tables broke (PostgreSQL names its constraint itself)."""
        broken = conn.exec_driver_sql("PRAGMA foreign_key_check").first()
        if broken is not None:
            child, rowid, parent, _ = broken
            raise OperationFailed(
                OperationErrorCode.APPLY_FAILED,
                f"source {self.name!r}: the foreign key of table {child!r} on table {parent!r} no longer fits "
                f"(row {rowid} of {child!r} references a row {parent!r} would not have); nothing was changed",
            )

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
        *,
        into: str | None = None,
    ) -> None:
        """Insert the table file's rows into the table (`into`: a temporary table like it)."""
        if not table.columns:
            return
        categories = {c.name: c.category for c in table.columns}
        types = {c.name: c.type for c in table.columns}
        names = [name for name, _ in header.columns]
        sql = insert_sql(catalog, table.name, names, types, into=into)
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
