"""The GraphQL schema. `schema.graphql` at the repo root is exported from `schema`."""

from __future__ import annotations

import strawberry
import strawberry.printer
from strawberry.extensions import (
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types

from server.api import apply_fields, local_copy_fields, mutations, queries, subscriptions
from server.api.errors import should_mask
from server.api.scalars import SCALARS
from server.api.types.local_copy import LocalCopy
from server.api.types.operation import Operation
from server.api.types.restore_point import RestorePoint

# Each feature keeps its root fields in its own module; they are merged here, in this order.
QUERIES: tuple[type, ...] = (queries.Query, local_copy_fields.LocalCopyQueries, apply_fields.SystemQuery)
MUTATIONS: tuple[type, ...] = (mutations.Mutation, local_copy_fields.LocalCopyMutations, apply_fields.ApplyMutation)
SUBSCRIPTIONS: tuple[type, ...] = (subscriptions.Subscription, apply_fields.SystemSubscription)


def build_schema(*, max_depth: int = 12, max_tokens: int = 2000, max_aliases: int = 30) -> strawberry.Schema:
    """The schema with its limits; extensions are factories so no state is shared."""
    return strawberry.Schema(
        query=merge_types("Query", QUERIES),
        mutation=merge_types("Mutation", MUTATIONS),
        subscription=merge_types("Subscription", SUBSCRIPTIONS),
        types=[RestorePoint, Operation, LocalCopy],
        config=StrawberryConfig(scalar_map=SCALARS, disable_field_suggestions=True),
        extensions=[
            lambda: QueryDepthLimiter(max_depth=max_depth),
            lambda: MaxTokensLimiter(max_token_count=max_tokens),
            lambda: MaxAliasesLimiter(max_alias_count=max_aliases),
            ParserCache,
            ValidationCache,
            lambda: MaskErrors(should_mask_error=should_mask),
        ],
    )


schema = build_schema()


def schema_text() -> str:
    """The SDL that `schema.graphql` must hold."""
    return strawberry.printer.print_schema(schema) + "\n"
