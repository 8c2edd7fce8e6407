"""A table as a human-readable file: JSON Lines, a header line, then one object per row.

    {"format": "backups.table/1", "table": "users", "columns": [{"name": "id", "type": "integer"}, ...], "primaryKey": ["id"]}
    {"id": 1, "name": "Ada", "born": "1815-12-10", "photo": {"$base64": "iVBORw0..."}}

Values: NULL, booleans, integers and text as themselves; floats as numbers, except NaN and
the infinities, written {"$float": "NaN"}; bytes as {"$base64": ...}; JSON columns as the
document itself; every other PostgreSQL type (numeric, dates, timestamps, uuid, arrays,
intervals, enums...) as PostgreSQL's own text form, which casts back exactly. Rows are
sorted by primary key, so an unchanged table gives the same bytes (and is stored once).
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any

from server.sources.database.catalog import Column, Table

FORMAT = "backups.table/1"
SUFFIX = ".jsonl"


class TableFileError(ValueError):
    """A table file that cannot be read back."""


@dataclass(frozen=True, slots=True)
class TableHeader:
    table: str
    columns: tuple[tuple[str, str], ...]  # (name, type)
    primary_key: tuple[str, ...]


def header_line(table: Table) -> bytes:
    header = {
        "format": FORMAT,
        "table": table.name,
        "columns": [{"name": c.name, "type": c.type} for c in table.columns],
        "primaryKey": list(table.primary_key),
    }
    return _line(header)


def row_line(columns: Sequence[Column], row: Sequence[Any]) -> bytes:
    return _line({c.name: encode_value(value, c.category) for c, value in zip(columns, row, strict=True)})


def _line(document: Any) -> bytes:
    return (json.dumps(document, ensure_ascii=False, allow_nan=False) + "\n").encode()


def encode_value(value: Any, category: str) -> Any:
    if value is None:
        return None
    if category == "json":
        return json.loads(value)  # read as text: the document, not the driver's parse of it
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return {"$float": "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")}
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$base64": base64.b64encode(bytes(value)).decode()}
    return str(value)


def decode_value(value: Any, category: str) -> Any:
    """A value from a row line, as the driver should bind it."""
    if value is None:
        return None
    if category == "json":
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        if set(value) == {"$base64"} and isinstance(value["$base64"], str):
            return base64.b64decode(value["$base64"], validate=True)
        if set(value) == {"$float"} and value["$float"] in ("NaN", "Infinity", "-Infinity"):
            return float(value["$float"].lower().replace("infinity", "inf"))
        raise TableFileError(f"unexpected object value {json.dumps(value)[:80]}")
    if isinstance(value, list):
        raise TableFileError("unexpected list value")
    return value


def read_header(stream: IO[bytes], expected_table: str) -> TableHeader:
    line = stream.readline()
    try:
        header = json.loads(line)
        if header.get("format") != FORMAT:
            raise TableFileError(f"unknown format {header.get('format')!r}")
        columns = tuple((str(c["name"]), str(c["type"])) for c in header["columns"])
        table = header["table"]
        key = tuple(str(k) for k in header.get("primaryKey", ()))
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise TableFileError(f"the file for table {expected_table!r} has no valid header ({error})") from None
    if table != expected_table:
        raise TableFileError(f"the file {expected_table}{SUFFIX} holds table {table!r}")
    return TableHeader(table, columns, key)


def read_rows(stream: IO[bytes], header: TableHeader, categories: dict[str, str]) -> Iterator[tuple[Any, ...]]:
    """Rows after the header, as tuples in header column order, ready to bind."""
    names = [name for name, _ in header.columns]
    for number, line in enumerate(stream, start=2):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict) or set(row) != set(names):
                raise TableFileError("its columns differ from the header's")
            yield tuple(decode_value(row[name], categories[name]) for name in names)
        except (ValueError, TypeError) as error:
            raise TableFileError(f"table {header.table!r}, line {number}: {error}") from None


def schema_differences(
    wanted: dict[str, TableHeader], live: dict[str, Table], expected_tables: Sequence[str]
) -> list[str]:
    """How the database's tables differ from the restore point's; empty when they match."""
    problems: list[str] = []
    for name in sorted(set(wanted) - set(live)):
        problems.append(f"table {name!r} is missing from the database")
    for name in sorted(set(expected_tables) - set(wanted)):
        problems.append(f"table {name!r} is in the database but not in the restore point")
    for name in sorted(set(wanted) & set(live)):
        have = {c.name: c.type for c in live[name].columns}
        want = dict(wanted[name].columns)
        for column in sorted(want.keys() - have.keys()):
            problems.append(f"column {name}.{column} is missing from the database")
        for column in sorted(have.keys() - want.keys()):
            problems.append(f"column {name}.{column} is not in the restore point")
        for column in sorted(want.keys() & have.keys()):
            if want[column] != have[column]:
                problems.append(
                    f"column {name}.{column} is {have[column]} in the database but {want[column]} in the restore point"
                )
    return problems
