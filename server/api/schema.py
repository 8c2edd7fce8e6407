"""The GraphQL schema. `schema.graphql` at the repo root is exported from `schema`."""

from __future__ import annotations

import contextlib
import logging
import warnings
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
from strawberry.schema.name_converter import NameConverter
from strawberry.tools import merge_types
from strawberry.types.graphql import OperationType
from strawberry.utils.logging import StrawberryLogger

from server.api.errors import INTERNAL, ClientError, should_mask, with_code
from server.api.fast_path.event_hooks import EventHooksRunner
from server.api.fast_path.fast_execution import FastLeafExecutionContext
from server.api.features import (
    access,
    diffs,
    downloads,
    health,
    local_copies,
    locations,
    nodes,
    notifications,
    operations,
    restore_points,
    schedules,
    settings,
    sources,
    system,
    verification,
)
from server.api.http.auth import RequireAuthentication
from server.api.permissions import protect
from server.api.scalars import SCALARS
from server.api.types.local_copy import LocalCopy
from server.api.types.location import RemoteCopy
from server.api.types.operation import Operation
from server.api.types.restore_point import RestorePoint
from server.api.types.schedule import Schedule
from server.model.errors import RequestErrorCode

log = logging.getLogger("server.api")

# A GraphQL execution cancelled midway (a websocket closed, or a subscription completed, while
# an event's fields were being resolved) leaves the coroutines graphql-core had made for fields
# it had not yet started; they are closed unstarted (nothing of them ran, so nothing is lost)
# and Python warns "never awaited" for each (graphql-core #269, open). Only those, named by
# graphql-core's executor and Strawberry's resolver wrapper, are kept out of the log; a
# coroutine of ours never awaited still warns (and fails the tests).
STRANDED_RESOLVER_WARNING = (
    r"coroutine '(Executor\.[\w.<>]+|GraphQLCoreConverter\.from_resolver\.<locals>\._async_resolver)'"
    r" was never awaited"
)


def quiet_stranded_resolvers() -> None:
    warnings.filterwarnings("ignore", message=STRANDED_RESOLVER_WARNING, category=RuntimeWarning)


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
        masked.extensions = {"code": str(INTERNAL)}
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
            raise ClientError(
                "Subscriptions are served over websockets (graphql-transport-ws) only.", RequestErrorCode.BAD_REQUEST
            )
        yield


# Each feature keeps its root fields in its own module (server/api/features/); they are merged
# here, in this order.
QUERIES: tuple[type, ...] = (
    restore_points.RestorePointQueries,
    operations.OperationQueries,
    sources.StorageQueries,
    settings.SettingsQueries,
    nodes.NodeQueries,
    local_copies.LocalCopyQueries,
    sources.SourceQueries,
    system.SystemQueries,
    diffs.DiffQueries,
    access.AccessQueries,
    locations.LocationQueries,
    schedules.ScheduleQueries,
    health.HealthQueries,
    notifications.NotificationQueries,
)
MUTATIONS: tuple[type, ...] = (
    restore_points.RestorePointMutations,
    operations.OperationMutations,
    settings.SettingsMutations,
    local_copies.LocalCopyMutations,
    downloads.DownloadMutations,
    system.ApplyMutations,
    locations.LocationMutations,
    schedules.ScheduleMutations,
    verification.VerificationMutations,
    access.AccessMutations,
    notifications.NotificationMutations,
)
SUBSCRIPTIONS: tuple[type, ...] = (
    operations.OperationSubscriptions,
    system.SystemSubscriptions,
    health.HealthSubscriptions,
)

# schema.graphql lists these mutations first, in this order, as they were first published (the
# features interleaved); the other mutations follow in the order above, as do Query's and
# Subscription's fields.
MUTATION_ORDER: tuple[str, ...] = (
    "createRestorePoint",
    "cancelOperation",
    "dismissOperation",
    "deleteRestorePoint",
    "updateRestorePoint",
    "updateSettings",
    "exportRestorePoint",
    "importLocalCopy",
    "deleteLocalCopy",
    "createDownloadUrl",
    "uploadLocalCopy",
)


def in_order(root: type, first: tuple[str, ...], names: NameConverter) -> type:
    """The merged root type with the fields named in `first` first, in that order; the others
    after them, as merged."""
    definition = root.__strawberry_definition__  # type: ignore[attr-defined]
    rank = {name: place for place, name in enumerate(first)}
    definition.fields = sorted(definition.fields, key=lambda field: rank.get(names.get_graphql_name(field), len(first)))
    return root


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
        mutation=protect(
            in_order(merge_types("Mutation", MUTATIONS), MUTATION_ORDER, config.name_converter), config.name_converter
        ),
        subscription=protect(merge_types("Subscription", SUBSCRIPTIONS), config.name_converter),
        types=[RestorePoint, Operation, LocalCopy, RemoteCopy, Schedule],
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
