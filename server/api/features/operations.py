"""Operations: the history (operations, operation), cancel and dismiss, and following them live
(operationProgress, operationLog, operationsChanged). OperationPayload, which every mutation
that starts an operation answers with, is here too."""

from __future__ import annotations

import functools
from collections.abc import AsyncGenerator
from datetime import datetime

import strawberry

from server.api.context import Info
from server.api.errors import UserError, attempt, to_client_error
from server.api.pagination import page_size
from server.api.types.operation import LogEntry, Operation, OperationKind, OperationStatus
from server.api.types.page_info import Connection, connection_of
from server.model import records as models
from server.model.errors import DomainError


@strawberry.type
class OperationPayload:
    operation: Operation | None
    user_errors: list[UserError]

    @classmethod
    def of(cls, op: models.Operation | None, errors: list[UserError]) -> OperationPayload:
        return cls(operation=Operation.from_domain(op) if op else None, user_errors=errors)


@strawberry.type
class DismissOperationsPayload:
    dismissed_ids: list[strawberry.ID] = strawberry.field(description="The operations dismissed now.")
    user_errors: list[UserError]


@strawberry.type
class OperationQueries:
    @strawberry.field(
        description="Operations, newest first. Dismissed ones are left out of a list without a "
        "`status` filter unless `includeDismissed`; a `status` filter finds them either way. "
        "`createdAfter`/`createdBefore` (exclusive) bound createdAt."
    )
    async def operations(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        status: list[OperationStatus] | None = None,
        kind: list[OperationKind] | None = None,
        include_dismissed: bool | None = False,
        requested_by: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
    ) -> Connection[Operation]:
        services = info.context.services
        try:
            page = await services.operations.page(
                first=page_size(first, info.context.config.max_page_size),
                after=after,
                statuses=status,
                kinds=kind,
                include_dismissed=bool(include_dismissed),
                requested_by=requested_by,
                created_after=created_after,
                created_before=created_before,
            )
        except DomainError as error:
            raise to_client_error(error) from None
        return connection_of(page, Operation.from_domain, after=after)

    @strawberry.field
    async def operation(self, info: Info, id: strawberry.ID) -> Operation | None:
        op = await info.context.services.operations.get(str(id))
        return Operation.from_domain(op) if op else None


@strawberry.type
class OperationMutations:
    @strawberry.mutation(description="Stop a queued or running operation; what it wrote is removed.")
    async def cancel_operation(self, info: Info, id: strawberry.ID) -> OperationPayload:
        op, errors = await attempt(lambda: info.context.services.operations.cancel(str(id)))
        return OperationPayload.of(op, errors)

    @strawberry.mutation(description="Hide a finished operation from the default operations list.")
    async def dismiss_operation(self, info: Info, id: strawberry.ID) -> OperationPayload:
        op, errors = await attempt(lambda: info.context.services.operations.dismiss(str(id)))
        return OperationPayload.of(op, errors)

    @strawberry.mutation(
        description="Hide every finished operation from the default operations list at once (queued and "
        "running ones stay); an operationsChanged event tells of each."
    )
    async def dismiss_finished_operations(self, info: Info) -> DismissOperationsPayload:
        ids, errors = await attempt(info.context.services.operations.dismiss_finished)
        return DismissOperationsPayload(dismissed_ids=[strawberry.ID(i) for i in ids or []], user_errors=errors)


@strawberry.type
class OperationSubscriptions:
    @strawberry.subscription(
        description="The operation's state at once, then after each change (progress is "
        "coalesced); completes after the final state."
    )
    async def operation_progress(self, info: Info, id: strawberry.ID) -> AsyncGenerator[Operation, None]:
        try:
            async for op in info.context.services.operations.follow(str(id)):
                yield Operation.from_domain(op)
        except DomainError as error:
            raise to_client_error(error) from None

    @strawberry.subscription(
        description="Stored log lines after `afterSequence`, then new ones live; completes "
        "when the operation has finished and every line was sent."
    )
    async def operation_log(
        self, info: Info, id: strawberry.ID, after_sequence: int | None = 0
    ) -> AsyncGenerator[LogEntry, None]:
        try:
            async for entry in info.context.services.operations.follow_log(str(id), max(after_sequence or 0, 0)):
                yield _log_entry(entry)
        except DomainError as error:
            raise to_client_error(error) from None

    @strawberry.subscription(
        description="Any operation created, progressing, finishing or dismissed, from now on. With "
        "`includeCurrent`, it starts with every queued or running operation as it is now: after a "
        "reconnect, refetch the rows a list shows as unfinished that are not among them."
    )
    async def operations_changed(
        self, info: Info, include_current: bool | None = False
    ) -> AsyncGenerator[Operation, None]:
        async for op in info.context.services.operations.follow_changes(include_current=bool(include_current)):
            yield Operation.from_domain(op)


@functools.lru_cache(maxsize=1024)
def _log_entry(entry: models.LogEntry) -> LogEntry:
    # Every follower of a log gets the same object for a line, so an event can be executed
    # once and its result shared between them (see server/api/fast_path/fast_execution.py).
    return LogEntry.from_domain(entry)
