"""docs/reference/error-codes.md is made from the code enums (server/model/errors.py): it must
match them, and every code must say what it means."""

from __future__ import annotations

import re
from pathlib import Path

from server.api.error_table import SECTIONS, TABLE_FILE, domain_error_codes, error_table, meanings
from server.model.errors import OperationErrorCode, RequestErrorCode, UserErrorCode


def test_error_table_matches_the_code() -> None:
    assert TABLE_FILE.read_text() == error_table(), (
        "docs/reference/error-codes.md is out of date: run `make error-codes` and commit it"
    )


def test_every_code_says_what_it_means() -> None:
    for codes, _, _ in SECTIONS:
        described = meanings(codes)
        assert [code.name for code in codes if not described.get(code.name)] == [], (
            f"{codes.__name__}: put a string under each member saying what it means"
        )


def test_every_domain_error_carries_a_listed_code() -> None:
    listed = {code.value for codes in (UserErrorCode, OperationErrorCode, RequestErrorCode) for code in codes}
    assert domain_error_codes() - listed == set()
    assert {code.value for code in UserErrorCode} <= domain_error_codes()


def test_codes_the_http_layer_writes_are_listed() -> None:
    """server/web and server/app.py write some codes as strings: each must be in the table."""
    root = Path(__file__).resolve().parents[1] / "server"
    written = re.compile(r'"code": "([A-Z_]+)"|\b[45]\d\d, "([A-Z_]+)"|else "([A-Z_]+)"')
    found: set[str] = set()
    for path in [*(root / "web").rglob("*.py"), root / "app.py"]:
        found |= {code for match in written.findall(path.read_text()) for code in match if code}
    assert "PAYLOAD_TOO_LARGE" in found  # the patterns still find what they are meant to
    assert found - {code.value for code in RequestErrorCode} == set()
