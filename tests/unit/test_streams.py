from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from server.model.records import Operation, OperationKind, OperationStatus
from server.operations.live import LiveOperation
from server.operations.streams import follow_operation


class OneOperation:
    """The one thing follow_operation asks of a runner: the live operation by id."""

    def __init__(self, live: LiveOperation) -> None:
        self._live = live

    def live(self, op_id: str) -> LiveOperation | None:
        return self._live if op_id == self._live.op.id else None


def running() -> Operation:
    now = datetime.now(UTC)
    return Operation(
        id="op_1",
        kind=OperationKind.CREATE_RESTORE_POINT,
        status=OperationStatus.RUNNING,
        progress=0.5,
        stage="Storing content",
        created_at=now,
        started_at=now,
        finished_at=None,
        requested_by=None,
        dismissed=False,
        error=None,
        restore_point_id=None,
        local_copy_id=None,
        params={},
    )


async def test_progress_ends_on_the_final_state_even_if_it_closed_while_a_state_was_held() -> None:
    live = LiveOperation(op=running())
    stream = follow_operation(OneOperation(live), "op_1")  # type: ignore[arg-type]
    assert (await anext(stream)).status is OperationStatus.RUNNING
    # While the consumer still holds that state, the operation finishes and closes.
    live.op = dataclasses.replace(live.op, status=OperationStatus.SUCCEEDED, progress=1.0)
    live.closed = True
    live.signal.fire()
    assert (await anext(stream)).status is OperationStatus.SUCCEEDED
    assert [op async for op in stream] == []
