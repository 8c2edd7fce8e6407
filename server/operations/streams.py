"""Live views of operations for subscribers: current state first, then changes, then the end.

Nothing here queues per subscriber. Each stream remembers what it has delivered (a signal
version, a log sequence) and reads the newest state when woken, so a slow client only ever
costs one pending item, and a client that goes away leaves only a cancelled waiter.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from server.model.errors import NotFound, quoted
from server.model.records import LogEntry, Operation
from server.operations.runner import LOG_PAGE, OperationRunner

# A stream also re-checks this often even without a signal; a safety net, not the mechanism.
IDLE_RECHECK = 5.0


async def follow_operation(runner: OperationRunner, op_id: str) -> AsyncIterator[Operation]:
    """The operation's state now, then after each change (coalesced), ending after the last."""
    live = runner.live(op_id)
    if live is None:
        op = await runner.history.get(op_id)
        if op is None:
            raise NotFound(f"no operation with id {quoted(op_id)}", field="id")
        yield op
        return
    seen = live.signal.version
    last = live.op
    yield last
    # Ends with the final state in memory: storing it may take retries (a full disk).
    while not (live.closed or live.ended.is_set()):
        await live.signal.wait(seen, IDLE_RECHECK)
        seen = live.signal.version
        if live.op != last:
            last = live.op
            yield last
    # It may have closed while the consumer held the previous state: end on the final one.
    if live.op != last:
        yield live.op


async def follow_log(runner: OperationRunner, op_id: str, after: int = 0) -> AsyncIterator[LogEntry]:
    """Stored lines after `after`, then new ones as they are written, ending with the operation."""
    live = runner.live(op_id)
    if live is None and await runner.history.get(op_id) is None:
        raise NotFound(f"no operation with id {quoted(op_id)}", field="id")
    while True:
        seen = live.log_signal.version if live else 0
        # Once ended no line is added; a line not shown yet (a durable log's before it is
        # stored, one beyond the reserved numbers) is waited for (until closed).
        finished = live is None or live.closed or (live.ended.is_set() and live.all_shown)
        # The operation's own memory first, even once it has closed (when the runner lets go
        # of it): every follower wakes at the end, and none of them should need a query.
        lines = live.log_after(after) if live is not None else None
        if lines is None:
            lines = await runner.history.read_log(op_id, after=after, limit=LOG_PAGE)
        else:
            lines = lines[:LOG_PAGE]
        for entry in lines:
            yield entry
            after = entry.sequence
        if len(lines) == LOG_PAGE:
            continue  # more stored lines: page on before waiting
        if finished:
            return  # closed before this read, so the read saw every line
        assert live is not None
        await live.log_signal.wait(seen, IDLE_RECHECK)


async def follow_changes(runner: OperationRunner, *, include_current: bool = False) -> AsyncIterator[Operation]:
    """Every operation that is created, progresses, finishes or is dismissed, from now on;
    `include_current`: first every unfinished operation as it is now."""
    listener = runner.changes.listen()
    try:
        seen = runner.changes.changed.version
        if include_current:
            # Listening began first, so a change made while these go out is sent after them.
            for current in runner.history.unfinished():
                yield current
        while True:
            await runner.changes.changed.wait(seen)
            seen = runner.changes.changed.version
            while listener.dirty:
                op = await runner.history.get(listener.dirty.pop())
                if op is not None:
                    yield op
    finally:
        runner.changes.unlisten(listener)
