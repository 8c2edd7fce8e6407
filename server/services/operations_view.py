"""Operations as clients see them: the history page by page, one operation and its log, live
streams of them, and what a client may do to them (cancel, dismiss one, dismiss every finished one).

The API calls this instead of reaching into the runner: the runner queues and runs work, its
history reads what is stored, and `server.operations.streams` follows both live.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

from server.model.records import LogEntry, Operation, OperationKind, OperationStatus, Page
from server.operations import streams
from server.operations.runner import OperationRunner


class OperationsView:
    def __init__(self, runner: OperationRunner) -> None:
        self._runner = runner

    async def page(
        self,
        *,
        first: int,
        after: str | None,
        statuses: list[OperationStatus] | None = None,
        kinds: list[OperationKind] | None = None,
        include_dismissed: bool = False,
        requested_by: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
    ) -> Page[Operation]:
        """Newest first; a running operation as it is now. INVALID_INPUT for a bad cursor or filter."""
        return await self._runner.history.page(
            first=first,
            after=after,
            statuses=statuses,
            kinds=kinds,
            include_dismissed=include_dismissed,
            requested_by=requested_by,
            created_after=created_after,
            created_before=created_before,
        )

    async def get(self, op_id: str) -> Operation | None:
        return await self._runner.history.get(op_id)

    async def read_log(self, op_id: str, *, after: int, limit: int | None) -> list[LogEntry]:
        """Log lines after a sequence number, oldest first, at most `limit` of them."""
        return await self._runner.history.read_log(op_id, after=after, limit=limit)

    async def cancel(self, op_id: str) -> Operation:
        """Stop a queued or running operation; NOT_FOUND, or INVALID_INPUT once it has finished."""
        return await self._runner.cancel(op_id)

    async def dismiss(self, op_id: str) -> Operation:
        """Hide a finished operation from the default list."""
        return await self._runner.dismiss(op_id)

    async def dismiss_finished(self) -> list[str]:
        """Hide every finished operation from the default list at once: their ids."""
        return await self._runner.dismiss_finished()

    def follow(self, op_id: str) -> AsyncIterator[Operation]:
        """The operation now, then after each change, ending after its final state (NOT_FOUND: none)."""
        return streams.follow_operation(self._runner, op_id)

    def follow_log(self, op_id: str, after: int = 0) -> AsyncIterator[LogEntry]:
        """Stored log lines after `after`, then new ones live, ending with the operation."""
        return streams.follow_log(self._runner, op_id, after)

    def follow_changes(self, *, include_current: bool = False) -> AsyncIterator[Operation]:
        """Every operation created, progressing, finishing or dismissed from now on."""
        return streams.follow_changes(self._runner, include_current=include_current)
