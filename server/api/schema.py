"""The GraphQL schema. `schema.graphql` at the repo root is exported from `schema`."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import strawberry
import strawberry.printer
from graphql import GraphQLError
from strawberry.extensions import (
    AddValidationRules,
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types
from strawberry.types.graphql import OperationType
from strawberry.utils.logging import StrawberryLogger

from server.api import (
    apply_fields,
    caller_fields,
    local_copy_fields,
    location_fields,
    mutations,
    queries,
    source_fields,
    subscriptions,
)
from server.api.auth import RequireAuthentication
from server.api.errors import INTERNAL, ClientError, should_mask, with_code
from server.api.fast_path.event_hooks import EventHooksRunner
from server.api.fast_path.fast_execution import FastLeafExecutionContext
from server.api.permissions import protect
from server.api.scalars import SCALARS
from server.api.types.local_copy import LocalCopy
from server.api.types.location import RemoteCopy
from server.api.types.operation import Operation
from server.api.types.restore_point import RestorePoint

log = logging.getLogger("server.api")


class BackupsSchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        """Log the unexpected with a traceback; what a client caused (bad input, no token) is
        no server fault and gets one debug line, so a flood of refusals cannot flood the log."""
        for error in errors:
            with_code(error)  # a parse error reaches no extension: it gets its code here
            if should_mask(error):
                StrawberryLogger.error(error, execution_context)
            else:
                log.debug("client error: %s", error.message)


class FastBackupsSchema(BackupsSchema):
    """The schema on the fast path (server/api/fast_path): per-event hooks that do nothing are skipped."""

    def create_extensions_runner(self, execution_context: Any, extensions: list[SchemaExtension]) -> EventHooksRunner:
        return EventHooksRunner(
            execution_context=execution_context, extensions=extensions, quiet_on_clean=(QuickMaskErrors,)
        )


class QuickMaskErrors(MaskErrors):
    """MaskErrors that looks no further at a result without errors: its type check (a runtime
    Protocol isinstance) cost more than the rest of a subscription event's delivery."""

    def _process_result(self, result: object) -> None:
        if getattr(result, "errors", None):
            super()._process_result(result)

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        # Every top-level error leaves with an extensions.code (GRAPHQL_VALIDATION_FAILED, ...).
        return [with_code(error) for error in super()._process_errors(errors)]

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        masked = super().anonymise_error(error)
        masked.extensions = {"code": INTERNAL}
        return masked


class TolerantParserCache(ParserCache):
    """ParserCache that leaves a document it cannot parse to Strawberry's own parse step.

    Its hook parses before Strawberry's try block: a syntax error escaped as an exception,
    which ended a subscription with a bare `complete` and no error. Strawberry then parses
    the text itself and reports the syntax error as it should."""

    def on_parse(self) -> Iterator[None]:
        # Not cached (lru_cache keeps no exceptions): Strawberry's parse raises it again.
        with contextlib.suppress(GraphQLError):
            self.execution_context.graphql_document = self.cached_parse_document(
                self.execution_context.query, **self.execution_context.parse_options
            )
        yield


class SubscriptionsOverWebsocketsOnly(SchemaExtension):
    """Over plain HTTP a subscription would run as if it were a query and fail unexpectedly."""

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context.context
        if self.execution_context.operation_type is OperationType.SUBSCRIPTION and not context.websocket:
            raise ClientError("Subscriptions are served over websockets (graphql-transport-ws) only.", "BAD_REQUEST")
        yield


# Each feature keeps its root fields in its own module; they are merged here, in this order.
QUERIES: tuple[type, ...] = (
    queries.Query,
    local_copy_fields.LocalCopyQueries,
    source_fields.SourceQuery,
    apply_fields.SystemQuery,
    caller_fields.CallerQuery,
    location_fields.LocationQueries,
)
MUTATIONS: tuple[type, ...] = (
    mutations.Mutation,
    local_copy_fields.LocalCopyMutations,
    apply_fields.ApplyMutation,
    location_fields.LocationMutations,
)
SUBSCRIPTIONS: tuple[type, ...] = (subscriptions.Subscription, apply_fields.SystemSubscription)


def build_schema(
    *, max_depth: int = 12, max_tokens: int = 2000, max_aliases: int = 30, fast: bool = True
) -> strawberry.Schema:
    """The schema with its limits; extensions are factories so no state is shared.

    Every root field gets the role that server/api/permissions.py names for it. `fast`: the fast
    path's executor and hooks (BACKUPS_FAST_EXECUTION); else Strawberry's stock ones."""
    config = StrawberryConfig(scalar_map=SCALARS, disable_field_suggestions=True)
    # The limiters' rule classes are made once: the validation cache is keyed by the rules,
    # and a fresh class per request (what the stock factories make) would miss every time.
    limit_rules = [
        *QueryDepthLimiter(max_depth=max_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=max_aliases).validation_rules,
    ]
    return (FastBackupsSchema if fast else BackupsSchema)(
        query=protect(merge_types("Query", QUERIES), config.name_converter),
        mutation=protect(merge_types("Mutation", MUTATIONS), config.name_converter),
        subscription=protect(merge_types("Subscription", SUBSCRIPTIONS), config.name_converter),
        types=[RestorePoint, Operation, LocalCopy, RemoteCopy],
        config=config,
        execution_context_class=FastLeafExecutionContext if fast else None,
        extensions=[
            RequireAuthentication,
            SubscriptionsOverWebsocketsOnly,
            lambda: AddValidationRules(limit_rules),
            lambda: MaxTokensLimiter(max_token_count=max_tokens),
            TolerantParserCache,
            ValidationCache,
            lambda: QuickMaskErrors(should_mask_error=should_mask),
        ],
    )


schema = build_schema()


def schema_text() -> str:
    """The SDL that `schema.graphql` must hold."""
    return strawberry.printer.print_schema(schema) + "\n"
