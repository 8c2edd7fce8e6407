"""What a code generator reads: every custom scalar described, and every operation error code in the enum."""

from __future__ import annotations

import re
from pathlib import Path

from graphql import GraphQLScalarType

from server.api.schema import schema
from server.api.types.operation import OperationErrorCode

SERVER = Path(__file__).resolve().parents[2] / "server"
BUILT_IN = {"String", "Int", "Float", "Boolean", "ID"}
# An operation's error code is the first argument of OperationFailed/OperationError/RestartFailed,
# written as a literal or through a module constant (apply_run.BEFORE_CHANGES).
RAISED = re.compile(r"\b(?:OperationFailed|OperationError|RestartFailed)\(\s*\"([A-Z][A-Z_]+)\"")
CONSTANT = re.compile(r"^[A-Z_]+ = \"([A-Z][A-Z_]+)\"$", re.MULTILINE)


def test_every_custom_scalar_has_a_description() -> None:
    scalars = [t for name, t in schema._schema.type_map.items()
               if isinstance(t, GraphQLScalarType) and name not in BUILT_IN]
    assert {t.name for t in scalars} == {"DateTime", "JSON", "ByteCount", "Upload"}
    assert all(t.description for t in scalars), [t.name for t in scalars if not t.description]
    specified = {t.name: t.specified_by_url for t in scalars}
    assert specified["DateTime"] == "https://www.rfc-editor.org/rfc/rfc3339"
    assert specified["Upload"] and specified["JSON"]


def test_every_error_code_an_operation_can_end_with_is_in_the_enum() -> None:
    raised: set[str] = set()
    for path in SERVER.rglob("*.py"):
        text = path.read_text()
        raised |= set(RAISED.findall(text))
        if "OperationFailed(" in text:
            raised |= set(CONSTANT.findall(text))
    assert {"SOURCE_UNAVAILABLE", "APPLY_FAILED", "INTERRUPTED_BEFORE_CHANGES", "RESTART_TIMEOUT"} <= raised
    missing = raised - {code.value for code in OperationErrorCode}
    assert not missing, f"codes raised but not in OperationErrorCode: {sorted(missing)}"
