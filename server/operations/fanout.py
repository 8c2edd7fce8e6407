"""operationsChanged fan-out: each subscriber collects the ids that changed, coalesced."""

from __future__ import annotations

from server.operations.signal import Signal


class ChangeListener:
    """One operationsChanged subscriber: the ids changed since it last looked."""

    __slots__ = ("dirty",)

    def __init__(self) -> None:
        self.dirty: set[str] = set()


class ChangeFanout:
    """A set of ids per listener instead of a queue of events: a slow listener that misses
    ten progress steps of one operation holds one id, not ten events."""

    def __init__(self) -> None:
        self._listeners: set[ChangeListener] = set()
        self.changed = Signal()  # fires when any operation changes

    def __len__(self) -> int:
        return len(self._listeners)

    def listen(self) -> ChangeListener:
        listener = ChangeListener()
        self._listeners.add(listener)
        return listener

    def unlisten(self, listener: ChangeListener) -> None:
        self._listeners.discard(listener)

    def announce(self, op_id: str) -> None:
        for listener in self._listeners:
            listener.dirty.add(op_id)
        self.changed.fire()
