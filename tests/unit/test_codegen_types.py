"""What a code generator reads: every custom scalar described, and every operation error code in the enum."""

from __future__ import annotations

from graphql import GraphQLScalarType

from server.api.schema import schema
from server.api.types.operation import ErrorCodeField
from server.model import errors

BUILT_IN = {"String", "Int", "Float", "Boolean", "ID"}


def test_every_custom_scalar_has_a_description() -> None:
    scalars = [
        t for name, t in schema._schema.type_map.items() if isinstance(t, GraphQLScalarType) and name not in BUILT_IN
    ]
    assert {t.name for t in scalars} == {"DateTime", "JSON", "ByteCount", "Upload"}
    assert all(t.description for t in scalars), [t.name for t in scalars if not t.description]
    specified = {t.name: t.specified_by_url for t in scalars}
    assert specified["DateTime"] == "https://www.rfc-editor.org/rfc/rfc3339"
    assert specified["Upload"] and specified["JSON"]


def test_the_graphql_enum_lists_every_code_an_operation_can_end_with() -> None:
    # The server raises codes only through the domain's enum (tests/unit/test_operation_error_codes.py
    # finds any bare one), so the GraphQL enum is complete when it holds the same names, plus OTHER.
    graphql_codes = {code.value for code in ErrorCodeField}
    assert graphql_codes == {code.value for code in errors.OperationErrorCode} | {"OTHER"}
