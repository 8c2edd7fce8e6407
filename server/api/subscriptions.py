"""Subscription fields over graphql-transport-ws; the streams themselves live in operations/."""

from __future__ import annotations

import functools
from collections.abc import AsyncGenerator

import strawberry

from server.api.context import Info
from server.api.errors import to_client_error
from server.api.types.operation import LogEntry, Operation
from server.model import records as models
from server.model.errors import DomainError
from server.operations import streams


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="The operation's state at once, then after each change (progress is "
        "coalesced); completes after the final state."
    )
    async def operation_progress(self, info: Info, id: strawberry.ID) -> AsyncGenerator[Operation, None]:
        try:
            async for op in streams.follow_operation(info.context.services.runner, str(id)):
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
            async for entry in streams.follow_log(info.context.services.runner, str(id), max(after_sequence or 0, 0)):
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
        async for op in streams.follow_changes(info.context.services.runner, include_current=bool(include_current)):
            yield Operation.from_domain(op)


@functools.lru_cache(maxsize=1024)
def _log_entry(entry: models.LogEntry) -> LogEntry:
    # Every follower of a log gets the same object for a line, so an event can be executed
    # once and its result shared between them (see fast_execution.py).
    return LogEntry.from_domain(entry)
