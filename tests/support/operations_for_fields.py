"""A minimal, valid GraphQL operation for any root field, built from the schema itself, so that
tests can call every field (including ones added later) without knowing them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    get_named_type,
    is_leaf_type,
)

# Valid-looking ids that name nothing: the call gets as far as the resolver, which finds nothing.
DUMMY_SCALARS: dict[str, Any] = {
    "ID": "zz_000000000000000000000000",
    "String": "x",
    "Int": 1,
    "Float": 1.0,
    "Boolean": False,
    "JSON": {},
    "ByteCount": 1,
    "DateTime": "2020-01-01T00:00:00+00:00",
}


@dataclass(frozen=True)
class FieldCall:
    root: str  # Query, Mutation or Subscription
    field: str
    document: str
    variables: dict[str, Any]

    @property
    def key(self) -> str:
        return f"{self.root}.{self.field}"


def dummy_value(type_: GraphQLInputType) -> Any:
    """A value of the type: the first enum value, an empty list, the required input fields."""
    if isinstance(type_, GraphQLNonNull):
        return dummy_value(type_.of_type)
    if isinstance(type_, GraphQLList):
        return []
    if isinstance(type_, GraphQLEnumType):
        return next(iter(type_.values))
    if isinstance(type_, GraphQLInputObjectType):
        return {
            name: dummy_value(field.type)
            for name, field in type_.fields.items()
            if isinstance(field.type, GraphQLNonNull) and field.default_value is None
        }
    assert isinstance(type_, GraphQLScalarType)
    return DUMMY_SCALARS.get(type_.name, "x")


def field_call(root: str, name: str, field: GraphQLField) -> FieldCall:
    """`<root>($a: T!) { name(a: $a) { __typename } }` with dummy values for required arguments."""
    required = {arg_name: arg for arg_name, arg in field.args.items() if isinstance(arg.type, GraphQLNonNull)}
    definitions = ", ".join(f"${arg_name}: {arg.type}" for arg_name, arg in required.items())
    arguments = ", ".join(f"{arg_name}: ${arg_name}" for arg_name in required)
    selection = "" if is_leaf_type(get_named_type(field.type)) else " { __typename }"
    document = (
        f"{root.lower()}{f'({definitions})' if definitions else ''} "
        f"{{ {name}{f'({arguments})' if arguments else ''}{selection} }}"
    )
    variables = {arg_name: dummy_value(arg.type) for arg_name, arg in required.items()}
    return FieldCall(root=root, field=name, document=document, variables=variables)


def every_root_field(schema: GraphQLSchema) -> list[FieldCall]:
    """A call for each Query, Mutation and Subscription field."""
    calls = []
    for root in (schema.query_type, schema.mutation_type, schema.subscription_type):
        if isinstance(root, GraphQLObjectType):
            calls.extend(field_call(root.name, name, field) for name, field in root.fields.items())
    return calls
