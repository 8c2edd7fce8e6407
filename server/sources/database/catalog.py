"""What a SQL database holds: tables, columns with their types, keys and foreign keys.

Read from the database's own catalog (pg_catalog, SQLite pragmas) rather than SQLAlchemy's
reflection, because apply needs the exact type names to cast values back (format_type
gives `numeric(10,2)`, `timestamp with time zone`, `text[]`, enum and domain names), and
must never meet a type it does not know. Blocking: call these in a worker thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection

# PostgreSQL base types read as native Python values; the rest travel as their text form.
PG_CATEGORIES = {
    "int2": "int",
    "int4": "int",
    "int8": "int",
    "float4": "float",
    "float8": "float",
    "bool": "bool",
    "text": "text",
    "varchar": "text",
    "bpchar": "text",
    "name": "text",
    "citext": "text",
    "json": "json",
    "jsonb": "json",
    "bytea": "bytes",
}


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: str  # as the database names it: `integer`, `character varying(20)`, `TEXT`
    # How values travel: int, float, bool, text, json, bytes; `other` (PostgreSQL text
    # form, cast back on apply); `any` (SQLite: whatever each value's storage class is).
    category: str
    sequence: str | None = None  # PostgreSQL: the sequence feeding it (serial, identity)


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]


def quote(name: str) -> str:
    """A quoted identifier, valid in PostgreSQL and SQLite."""
    return '"' + name.replace('"', '""') + '"'


class Catalog:
    """Catalog queries for one dialect and schema, on a caller's connection."""

    def __init__(self, conn: Connection, schema: str | None) -> None:
        self.conn = conn
        self.is_postgres = conn.dialect.name == "postgresql"
        if self.is_postgres:
            self.schema = schema or conn.exec_driver_sql("SELECT current_schema()").scalar_one()
        else:
            self.schema = None

    def ident(self, name: str) -> str:
        """A quoted identifier for SQL text; psycopg always parses %-placeholders (SQLAlchemy
        passes parameters even when there are none), so a % in a PostgreSQL name is doubled."""
        return quote(name).replace("%", "%%") if self.is_postgres else quote(name)

    def qualified(self, table: str) -> str:
        return f"{self.ident(self.schema)}.{self.ident(table)}" if self.schema else self.ident(table)

    def schema_exists(self) -> bool:
        if not self.is_postgres:
            return True
        found = self.conn.exec_driver_sql(
            "SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = %(schema)s", {"schema": self.schema}
        )
        return found.first() is not None

    def table_names(self) -> list[str]:
        if self.is_postgres:
            rows = self.conn.exec_driver_sql(
                "SELECT c.relname FROM pg_catalog.pg_class c"
                " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p') AND NOT c.relispartition"
                " ORDER BY c.relname",
                {"schema": self.schema},
            )
        else:
            rows = self.conn.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
                " AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
                " AND upper(sql) NOT LIKE 'CREATE VIRTUAL%' ORDER BY name"
            )
        return [row[0] for row in rows]

    def table(self, name: str) -> Table:
        return self._pg_table(name) if self.is_postgres else self._sqlite_table(name)

    def _pg_table(self, name: str) -> Table:
        params = {"schema": self.schema, "table": name}
        rows = self.conn.exec_driver_sql(
            "SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), bt.typname,"
            " pg_catalog.pg_get_serial_sequence("
            "   pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname), a.attname)"
            " FROM pg_catalog.pg_attribute a"
            " JOIN pg_catalog.pg_class c ON c.oid = a.attrelid"
            " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
            " JOIN pg_catalog.pg_type t ON t.oid = a.atttypid"
            " JOIN pg_catalog.pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END"
            " WHERE n.nspname = %(schema)s AND c.relname = %(table)s"
            "   AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''"
            " ORDER BY a.attnum",
            params,
        ).all()
        columns = tuple(
            Column(col, type_name, PG_CATEGORIES.get(base, "other"), sequence)
            for col, type_name, base, sequence in rows
        )
        key = self.conn.exec_driver_sql(
            "SELECT a.attname FROM pg_catalog.pg_index i"
            " JOIN pg_catalog.pg_class c ON c.oid = i.indrelid"
            " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
            " JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY(i.indkey)"
            " WHERE i.indisprimary AND n.nspname = %(schema)s AND c.relname = %(table)s"
            " ORDER BY array_position(i.indkey::int2[], a.attnum)",
            params,
        ).scalars()
        return Table(name, columns, tuple(key))

    def _sqlite_table(self, name: str) -> Table:
        rows = self.conn.exec_driver_sql(
            "SELECT name, type, pk, hidden FROM pragma_table_xinfo(?) ORDER BY cid", (name,)
        ).all()
        columns = tuple(Column(col, type_name, "any") for col, type_name, _, hidden in rows if hidden == 0)
        key = tuple(col for col, _, pk, hidden in sorted(rows, key=lambda r: r[2]) if pk and hidden == 0)
        return Table(name, columns, key)

    def foreign_keys(self) -> list[tuple[str | None, str, str | None, str]]:
        """(child schema, child, parent schema, parent) for every foreign key touching the schema."""
        if self.is_postgres:
            rows = self.conn.exec_driver_sql(
                "SELECT sn.nspname, s.relname, tn.nspname, t.relname FROM pg_catalog.pg_constraint k"
                " JOIN pg_catalog.pg_class s ON s.oid = k.conrelid"
                " JOIN pg_catalog.pg_namespace sn ON sn.oid = s.relnamespace"
                " JOIN pg_catalog.pg_class t ON t.oid = k.confrelid"
                " JOIN pg_catalog.pg_namespace tn ON tn.oid = t.relnamespace"
                " WHERE k.contype = 'f' AND k.conparentid = 0"
                "   AND (sn.nspname = %(schema)s OR tn.nspname = %(schema)s)",
                {"schema": self.schema},
            )
            return [(a, b, c, d) for a, b, c, d in rows]
        pairs: list[tuple[str | None, str, str | None, str]] = []
        for child in self.table_names():
            for (parent,) in self.conn.exec_driver_sql(
                'SELECT DISTINCT "table" FROM pragma_foreign_key_list(?)', (child,)
            ):
                pairs.append((None, child, None, parent))
        return pairs

    def size_bytes(self, tables: Sequence[str]) -> int | None:
        """Storage the tables take (PostgreSQL: with indexes and TOAST); None for SQLite."""
        if not self.is_postgres:
            return None
        return self.conn.exec_driver_sql(
            "SELECT COALESCE(sum(pg_catalog.pg_total_relation_size(c.oid)), 0)::bigint"
            " FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %(schema)s AND c.relname = ANY(%(tables)s)",
            {"schema": self.schema, "tables": list(tables)},
        ).scalar_one()


def parents_first(tables: Sequence[str], edges: Sequence[tuple[str, str]]) -> list[str]:
    """Tables ordered so a referenced table comes before the tables referencing it.

    `edges` are (child, parent). Self-references are ignored; tables in a cycle keep name
    order at the end (apply defers constraint checks where the database allows it).
    """
    waiting: dict[str, set[str]] = {table: set() for table in tables}
    for child, parent in edges:
        if child in waiting and parent in waiting and child != parent:
            waiting[child].add(parent)
    ordered: list[str] = []
    ready = sorted(t for t, parents in waiting.items() if not parents)
    while ready:
        table = ready.pop(0)
        ordered.append(table)
        del waiting[table]
        for other, parents in waiting.items():
            if table in parents:
                parents.discard(table)
                if not parents and other not in ready:
                    ready.append(other)
        ready.sort()
    return ordered + sorted(waiting)
