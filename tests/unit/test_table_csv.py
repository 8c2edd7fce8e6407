"""A table file as CSV: the header row, RFC 4180 quoting, NULL apart from an empty text, and
the table file's own forms for what CSV cannot hold."""

from __future__ import annotations

import csv
import io
import json

import pytest

from server.services.items.table_csv import BATCH_BYTES, csv_chunks, field
from server.sources.database.table_files import FORMAT, TableFileError


def table_file(rows: list[dict], columns: list[str]) -> io.BytesIO:
    header = {"format": FORMAT, "table": "t", "columns": [{"name": c, "type": "text"} for c in columns]}
    lines = [json.dumps(header)] + [json.dumps(row, ensure_ascii=False) for row in rows]
    return io.BytesIO(("\n".join(lines) + "\n").encode())


def test_each_value_as_a_field() -> None:
    assert field(None) == ""
    assert field("") == '""'
    assert field('say "hi", then\r\nleave') == '"say ""hi"", then\r\nleave"'
    assert field(42) == '"42"' and field(1.5) == '"1.5"' and field(True) == '"true"'
    assert field({"$base64": "AA=="}) == '"{""$base64"": ""AA==""}"'
    assert field({"$float": "NaN"}) == '"{""$float"": ""NaN""}"'
    assert field([1, "ä"]) == '"[1, ""ä""]"'


def test_a_table_as_csv() -> None:
    rows = [{"id": 1, "b": None, "c": "x,y"}, {"id": 2, "b": "", "c": "Ü\nline"}]
    text = b"".join(csv_chunks(table_file(rows, ["id", "b", "c"]), "t")).decode()
    assert text == '"id","b","c"\r\n"1",,"x,y"\r\n"2","","Ü\nline"\r\n'
    assert list(csv.reader(io.StringIO(text, newline=""))) == [["id", "b", "c"], ["1", "", "x,y"], ["2", "", "Ü\nline"]]


def test_rows_come_in_pieces_of_bounded_size() -> None:
    rows = [{"id": n, "text": "x" * 1000} for n in range(1000)]
    pieces = list(csv_chunks(table_file(rows, ["id", "text"]), "t"))
    assert len(pieces) > 1 and all(len(p) < BATCH_BYTES + 2000 for p in pieces)
    assert len(b"".join(pieces).split(b"\r\n")) == 1002  # the header, 1000 rows, and the end


def test_a_row_that_does_not_fit_the_header_is_refused() -> None:
    with pytest.raises(TableFileError, match="line 3"):
        list(csv_chunks(table_file([{"id": 1}, {"other": 2}], ["id"]), "t"))
    with pytest.raises(TableFileError):
        list(csv_chunks(table_file([], ["id"]), "another"))
