"""A table file (server/sources/database/table_files.py) as CSV: a header row of the column
names, then one row per line of the file, streamed in constant memory.

The mapping (RFC 4180: comma-separated, CRLF line ends, UTF-8):
- NULL is an empty field with no quotes; every other value is quoted, so an empty text is
  `""` and tells itself apart from NULL (PostgreSQL's `COPY ... CSV FORCE_QUOTE *` reads
  both back the same way);
- text is the text itself; a value that is not text is its JSON text as the table file keeps
  it: numbers (`42`, `1.5`), booleans (`true`), JSON columns (`{"a": [1]}`), and the
  documented forms of what neither CSV nor JSON holds as itself: bytes `{"$base64": "..."}`,
  NaN and the infinities `{"$float": "NaN"}`, `{"$float": "Infinity"}`.
Quoting is written here rather than by the csv module: Python 3.11's cannot leave NULL
unquoted while quoting an empty text (QUOTE_NOTNULL came in 3.12).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, BinaryIO

from server.sources.database.table_files import TableFileError, read_header

BATCH_BYTES = 256 * 1024  # rows are sent in pieces of about this size
CRLF = "\r\n"


def field(value: Any) -> str:
    """One value as a CSV field (see the module's docstring)."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return '"' + text.replace('"', '""') + '"'


def csv_chunks(stream: BinaryIO, table: str) -> Iterator[bytes]:
    """Blocking: the CSV of the table file read from `stream` (already checked), in pieces;
    the stream is closed at the end. TableFileError for a line that is not a row of the table."""
    with stream:
        header = read_header(stream, table)
        names = [name for name, _ in header.columns]
        parts = [",".join(field(name) for name in names) + CRLF]
        size = len(parts[0])
        for number, line in enumerate(stream, start=2):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as error:
                raise TableFileError(f"table {table!r}, line {number}: {error}") from None
            if not isinstance(row, dict) or set(row) != set(names):
                raise TableFileError(f"table {table!r}, line {number}: its columns differ from the header's")
            text = ",".join(field(row[name]) for name in names) + CRLF
            parts.append(text)
            size += len(text)
            if size >= BATCH_BYTES:
                yield "".join(parts).encode()
                parts, size = [], 0
        if parts:
            yield "".join(parts).encode()
