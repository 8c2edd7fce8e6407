"""schema.graphql is what frontends code against: it must match the code, and the code must
never break the fixed contract (tests/contract.graphql, from CONTRACT.md)."""

from __future__ import annotations

from pathlib import Path

from graphql import build_schema, find_breaking_changes

from server.api.schema import schema_text

ROOT = Path(__file__).resolve().parents[1]


def test_schema_file_matches_the_code() -> None:
    assert (ROOT / "schema.graphql").read_text() == schema_text(), (
        "schema.graphql is out of date: run `make schema` and commit it"
    )


def test_schema_keeps_the_contract() -> None:
    contract = build_schema((ROOT / "tests" / "contract.graphql").read_text())
    ours = build_schema(schema_text())
    breaking = [f"{change.type.name}: {change.description}" for change in find_breaking_changes(contract, ours)]
    assert breaking == []
