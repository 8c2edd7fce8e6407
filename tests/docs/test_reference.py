"""The root-field tables of docs/api/reference.md are the schema's: every field, its arguments,
what it returns and its role. On drift, `python -m tests.docs.api_table` rewrites them."""

from __future__ import annotations

from graphql import build_schema

from tests.docs.api_table import REFERENCE, SCHEMA_FILE, expected_reference


def test_reference_tables_match_the_schema() -> None:
    text = REFERENCE.read_text()
    expected = expected_reference(text, build_schema(SCHEMA_FILE.read_text()))
    assert text == expected, "docs/api/reference.md drifted from schema.graphql: run python -m tests.docs.api_table"
