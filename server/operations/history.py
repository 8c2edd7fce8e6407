"""Reading operations and their logs: unfinished ones as they are now (memory), the rest
from the database. The runner owns the memory; this only reads it."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime

from server.model.errors import InvalidInput
from server.model.ids import is_well_formed
from server.model.records import LogEntry, Operation, OperationKind, OperationStatus, Page
from server.operations.live import LiveOperation
from server.storage.db import operations_repo as repo
from server.storage.db.database import Database


class OperationHistory:
    def __init__(self, db: Database, live: Mapping[str, LiveOperation]) -> None:
        self._db = db
        self._live = live

    async def get(self, op_id: str) -> Operation | None:
        if not is_well_formed(op_id, "op"):
            return None
        if live := self._live.get(op_id):
            return live.op
        async with self._db.read() as session:
            return await repo.get_operation(session, op_id)

    def unfinished(self) -> list[Operation]:
        """Every queued or running operation as it is now, oldest first."""
        ops = [live.op for live in list(self._live.values()) if not live.op.done]
        return sorted(ops, key=lambda op: (op.created_at, op.id))

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
        """Newest first, with running operations shown as they are now, not as last flushed."""
        if requested_by is not None and any(ch < " " for ch in requested_by):
            raise InvalidInput("requestedBy has control characters", field="requestedBy")
        for field, moment in (("createdAfter", created_after), ("createdBefore", created_before)):
            if moment is not None and moment.utcoffset() is None:
                raise InvalidInput(f"{field} needs a UTC offset, e.g. 2026-03-01T12:00:00Z", field=field)
        async with self._db.read() as session:
            page = await repo.page_operations(
                session,
                first=first,
                after=after,
                statuses=statuses,
                kinds=kinds,
                include_dismissed=include_dismissed,
                requested_by=requested_by,
                created_after=created_after,
                created_before=created_before,
            )
        items = [live.op if (live := self._live.get(op.id)) else op for op in page.items]
        return dataclasses.replace(page, items=items)

    async def read_log(self, op_id: str, *, after: int, limit: int | None) -> list[LogEntry]:
        """Log lines after a sequence number: from memory while fresh, else from the database."""
        live = self._live.get(op_id)
        if live is not None and (lines := live.log_after(after)) is not None:
            return lines[:limit] if limit is not None else lines
        # Snapshot memory before reading the database: a flush in between moves lines from
        # one to the other, and taking memory first means no line falls in the gap.
        pending = live.shown_unflushed() if live else []
        async with self._db.read() as session:
            lines = await repo.read_log(session, op_id, after=after, limit=limit)
        last = lines[-1].sequence if lines else after
        for entry in pending:
            if limit is not None and len(lines) >= limit:
                break
            if entry.sequence == last + 1:
                lines.append(entry)
                last = entry.sequence
        return lines
