"""Operation error codes: only codes of the enum can be raised or stored, and the manual documents each."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from server.model.errors import OperationErrorCode, OperationFailed
from server.model.records import OperationError
from server.services.restart import RestartFailed

ROOT = Path(__file__).resolve().parents[2]


def test_a_code_outside_the_enum_cannot_be_raised_or_recorded() -> None:
    for make in (lambda c: OperationFailed(c, "m"), lambda c: OperationError(c, "m"), lambda c: RestartFailed(c, "m")):
        with pytest.raises(ValueError):
            make("CORRUPT_CONTENT")
        with pytest.raises(ValueError):
            make("SOURCE_UNAVAILABLE\n")
        assert make("SOURCE_UNAVAILABLE").code is OperationErrorCode.SOURCE_UNAVAILABLE


def test_old_names_read_back_as_the_one_damaged_content_code() -> None:
    for old in ("CORRUPT_CONTENT", "RESTORE_POINT_DAMAGED", "CONTENT_DAMAGED"):
        assert OperationErrorCode.stored(old) is OperationErrorCode.CONTENT_DAMAGED
    with pytest.raises(ValueError):
        OperationErrorCode.stored("NO_SUCH_CODE")


def test_the_server_names_codes_only_through_the_enum() -> None:
    """No bare string where a code is given, and every member is used somewhere."""
    bare = re.compile(r"(OperationFailed|OperationError|RestartFailed)\(\s*[\"']")
    used: set[str] = set()
    for path in (ROOT / "server").rglob("*.py"):
        text = path.read_text()
        assert not bare.search(text), f"{path}: an operation error code given as a bare string"
        used |= set(re.findall(r"OperationErrorCode\.([A-Z_]+)\b", text))
    assert used - {c.name for c in OperationErrorCode} == set()
    # INTERRUPTED_BEFORE_CHANGES is named once, as apply_run.BEFORE_CHANGES.
    assert {c.name for c in OperationErrorCode} - used == set()


def test_the_manual_documents_every_code_and_no_other() -> None:
    """docs/reference/error-codes.md (generated from the enums; its section on failed operations)."""
    manual = (ROOT / "docs" / "reference" / "error-codes.md").read_text()
    start = manual.index("| code |", manual.index("## A failed or interrupted operation"))
    table = manual[start : manual.index("\n\n", start)]
    documented = set(re.findall(r"^\| ([^|]+) \|", table, re.M)) - {"code", "---"}
    codes = {name for cell in documented for name in re.findall(r"`([A-Z_]+)`", cell)}
    assert codes == {c.value for c in OperationErrorCode}
