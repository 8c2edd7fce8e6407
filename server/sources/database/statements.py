"""The SQL a database source runs against one table: read it, fill it, fix its sequences."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection

from server.sources.database.catalog import Catalog, Table

# Read as the driver's own Python values; every other category travels as its text form.
NATIVE = ("int", "float", "bool", "text", "bytes", "any")


def select_sql(catalog: Catalog, table: Table) -> str:
    """Every column, natively or as its text form, sorted by primary key (else by all)."""

    def expr(category: str, name: str) -> str:
        return catalog.ident(name) if category in NATIVE else f"CAST({catalog.ident(name)} AS text)"

    columns = ", ".join(expr(c.category, c.name) for c in table.columns)
    if table.primary_key:
        order = ", ".join(catalog.ident(k) for k in table.primary_key)
    elif catalog.is_postgres:
        order = ", ".join(f"CAST({catalog.ident(c.name)} AS text)" for c in table.columns)
    else:
        order = ", ".join(catalog.ident(c.name) for c in table.columns)
    return f"SELECT {columns} FROM {catalog.qualified(table.name)} ORDER BY {order}"


def insert_sql(
    catalog: Catalog, table: str, names: Sequence[str], types: dict[str, str], *, into: str | None = None
) -> str:
    """An INSERT of one row of `table`'s columns (into the temporary table `into`, when given)."""
    target = f"{into or catalog.qualified(table)} ({', '.join(catalog.ident(n) for n in names)})"
    if not catalog.is_postgres:
        return f"INSERT INTO {target} VALUES ({', '.join('?' for _ in names)})"
    values = ", ".join(f"CAST(%s AS {types[n].replace('%', '%%')})" for n in names)
    return f"INSERT INTO {target} OVERRIDING SYSTEM VALUE VALUES ({values})"


def reset_sequences(conn: Connection, catalog: Catalog, table: Table) -> None:
    """Point serial and identity sequences past the restored rows, so new rows get fresh ids."""
    for column in table.columns:
        if column.sequence:
            name = catalog.ident(column.name)
            conn.exec_driver_sql(
                f"SELECT pg_catalog.setval(CAST(%s AS regclass), COALESCE(max({name}), 1), max({name}) IS NOT NULL)"
                f" FROM {catalog.qualified(table.name)}",
                (column.sequence,),
            )
