"""The in-memory state of a running operation, and the handle its job reports through."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from server.model.records import LogEntry, LogLevel, Operation, OperationError, OperationStatus
from server.model.url_credentials import mask_url_credentials
from server.operations.holds import Held, Hold, HoldRegistry
from server.operations.signal import Signal

# Progress is published at most this often (or on a stage change, or at 1% steps), so a
# job that reports per item does not wake every subscriber per item.
PROGRESS_INTERVAL = 0.1
# How often a paused background operation's thread looks whether it was cancelled meanwhile.
YIELD_CANCEL_CHECK = 0.05
# Stored lines also kept in memory: a follower still busy with the previous line when a
# flush stores the next one then reads memory, not the database (a thousand followers
# would otherwise make a thousand queries at once).
RECENT_LINES = 1000
# Log numbers are reserved in the database at least this many at a time, before a line with
# one is shown (see LiveOperation); a chatty job's blocks grow with its log (as many as it has
# written, up to LOG_RESERVE_MAX), so that it wakes the writer early only a few times.
LOG_RESERVE_BLOCK = 100
LOG_RESERVE_MAX = 10_000
T = TypeVar("T")


class OperationCancelled(Exception):
    """Raised at a job's next checkpoint after a cancel (or a shutdown) was requested."""


@dataclass
class LiveOperation:
    """The authoritative state of an unfinished operation; the database trails it.

    Log numbering. Lines reach followers at once, from memory, and are stored in batches
    (every 200 ms): a crash may lose lines a client has seen. Their numbers must not be
    given to other lines after the restart (a client resuming with `afterSequence` would
    skip those), so a line is shown before it is stored only if its number is reserved in
    the database: `log_reserved_through`, written a block of numbers ahead with the insert
    and then with a regular flush (an UPDATE it makes anyway), never one write per line. After a crash the next line is numbered after the reservation, leaving a gap
    where the lost lines and unused numbers were. A line beyond the reservation (a job
    outrunning the writer) is held back until the next reservation or its own store. A
    durable log (below) reserves nothing: it shows only stored lines.
    `op.last_sequence` is the newest line readers can get, so `lastSequence` names only
    lines that exist or existed for a reader.
    """

    op: Operation
    signal: Signal = field(default_factory=Signal)  # any change: state, log, the end
    # Only new readable log lines (and the end): log followers sleep through progress.
    log_signal: Signal = field(default_factory=Signal)
    unflushed: list[LogEntry] = field(default_factory=list)
    flushed_through: int = 0
    reserved_through: int = 0  # log numbers stored as reserved (the row's log_reserved_through)
    # The newest number given to a line (shown or not); by default op.last_sequence. A
    # resumed operation starts after what its previous run may have shown.
    numbered_through: int = -1
    first_numbered: int = field(init=False, default=0)  # this run's first line (after any gap)
    recent: list[LogEntry] = field(default_factory=list)  # stored lines ending at flushed_through
    dirty: bool = False
    closed: bool = False  # final state and every log line are in the database
    # Set once the final state is in memory (it may take retries to store it): ended for
    # readers, cancel and BUSY checks, even while `closed` is still False.
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    cancel_reason: str | None = None  # "cancel" or "shutdown"
    # False once a job passed its point of no return: cancel is refused, and a shutdown
    # leaves the operation to the start-up recovery of its kind instead of ending it.
    cancellable: bool = True
    no_cancel_reason: str | None = None
    # Log lines reach readers only once stored, reserved or not: what a client has seen
    # before a crash it reads after it too (for operations that resume, e.g. an apply).
    durable_log: bool = False
    cancel_event: asyncio.Event = field(default_factory=asyncio.Event)
    # What the job reads or relies on (its restore point or local copy, an apply's safety
    # restore point): nobody may delete them while it runs; released when it ends.
    holds: list[Hold] = field(default_factory=list)
    task: asyncio.Task[None] | None = None
    # A background operation (a verification) takes no slot, pauses its blocking work while
    # `may_run` is clear (a restore point is being created), and is stopped for an apply.
    background: bool = False
    may_run: threading.Event = field(default_factory=threading.Event)
    may_go_on: asyncio.Event = field(default_factory=asyncio.Event)  # may_run, for its work on the loop
    yielded: bool = False  # a pause was logged and not yet its end

    def __post_init__(self) -> None:
        self.numbered_through = max(self.numbered_through, self.op.last_sequence)
        self.first_numbered = self.numbered_through + 1
        self.may_run.set()
        self.may_go_on.set()

    def update(self, **changes: Any) -> None:
        self.op = dataclasses.replace(self.op, **changes)
        self.dirty = True

    def append_log(self, level: LogLevel, message: str) -> LogEntry:
        self.numbered_through += 1
        # Every line is shown to every viewer: a URL's user and password never reach one.
        message = mask_url_credentials(message) if "@" in message else message
        entry = LogEntry(sequence=self.numbered_through, at=datetime.now(UTC), level=level, message=message)
        self.unflushed.append(entry)
        self._show()
        return entry

    @property
    def all_shown(self) -> bool:
        """Whether readers can get every line numbered so far."""
        return self.op.last_sequence == self.numbered_through

    def reservation_wanted(self) -> int | None:
        """The reservation to store with the next flush, once half of the current one is used
        (none for a durable log: it shows only stored lines, so a restart leaves no gap)."""
        written = self.numbered_through - self.first_numbered + 1
        block = min(max(LOG_RESERVE_BLOCK, written), LOG_RESERVE_MAX)
        if self.durable_log or self.numbered_through + block // 2 <= self.reserved_through:
            return None
        return self.numbered_through + block

    def reserved(self, through: int) -> None:
        """Log numbers up to `through` are reserved in the database now."""
        self.reserved_through = max(self.reserved_through, through)
        self._show()

    def stored(self, lines: list[LogEntry]) -> None:
        """The first `lines` of `unflushed` are in the database now."""
        if not lines:
            return
        self.flushed_through = lines[-1].sequence
        del self.unflushed[: len(lines)]
        if self.recent and self.recent[-1].sequence + 1 != lines[0].sequence:
            self.recent.clear()  # keep `recent` gapless, so a position is a subtraction
        self.recent += lines
        if len(self.recent) > 2 * RECENT_LINES:
            del self.recent[:-RECENT_LINES]
        self._show()

    def _show(self) -> None:
        """Let readers have every line that is stored, or reserved (unless the log is durable)."""
        limit = self.flushed_through if self.durable_log else max(self.flushed_through, self.reserved_through)
        newest = min(self.numbered_through, limit)
        if newest > self.op.last_sequence and newest >= self.first_numbered:  # a line, not the gap
            self.op = dataclasses.replace(self.op, last_sequence=newest)
            self.log_signal.fire()

    def shown_unflushed(self) -> list[LogEntry]:
        """The lines not yet stored that readers may have already."""
        return [entry for entry in self.unflushed if entry.sequence <= self.op.last_sequence]

    def log_after(self, after: int) -> list[LogEntry] | None:
        """Lines after `after` if memory holds all of them, else None (read the database)."""
        lines: list[LogEntry] = []
        if after < self.flushed_through:
            start = after + 1 - self.recent[0].sequence if self.recent else -1
            if start < 0:
                return None
            lines = self.recent[start:]
        if not self.unflushed or self.op.last_sequence <= self.flushed_through:
            return lines
        return lines + [entry for entry in self.shown_unflushed() if entry.sequence > after]


class OperationContext:
    """What a job sees: report progress and log lines, honour cancel at checkpoints."""

    def __init__(
        self,
        live: LiveOperation,
        notify: Any,
        entry_delay: float = 0.0,
        flush: Callable[[], Awaitable[None]] | None = None,
        span: tuple[float, float] = (0.0, 1.0),
        stage_prefix: str | None = None,
        holds: HoldRegistry | None = None,
    ) -> None:
        self._live = live
        self._holds = holds or HoldRegistry()
        self._notify = notify
        self._entry_delay = entry_delay
        self._flush = flush
        self._span = span
        self._stage_prefix = stage_prefix
        self._last_publish = 0.0

    def section(self, start: float, end: float, stage_prefix: str | None = None) -> OperationContext:
        """A view of this context whose progress 0..1 maps onto start..end of the whole, so
        one job can run another step (e.g. a snapshot) as a part of itself."""
        low, high = self._span
        return OperationContext(
            self._live,
            self._notify,
            self._entry_delay,
            self._flush,
            (low + start * (high - low), low + end * (high - low)),
            stage_prefix,
            self._holds,
        )

    @property
    def operation(self) -> Operation:
        return self._live.op

    @property
    def pauses_per_item(self) -> bool:
        """Whether a test asked for a pause after each item (BACKUPS_TEST_ENTRY_DELAY): a
        job with many items then reports each one; otherwise once per batch is enough."""
        return self._entry_delay > 0

    @property
    def cancel_requested(self) -> bool:
        return self._live.cancel_reason is not None

    def progress(self, fraction: float, stage: str | None = None) -> None:
        low, high = self._span
        fraction = low + min(1.0, max(0.0, fraction)) * (high - low)
        fraction = min(1.0, max(self._live.op.progress, fraction))  # never goes backwards
        if stage is not None and self._stage_prefix:
            stage = f"{self._stage_prefix}: {stage}"
        new_stage = stage if stage is not None else self._live.op.stage
        now = time.monotonic()
        stage_changed = new_stage != self._live.op.stage
        big_step = fraction - self._live.op.progress >= 0.01
        self._live.update(progress=fraction, stage=new_stage)
        if stage_changed or big_step or now - self._last_publish >= PROGRESS_INTERVAL:
            self._last_publish = now
            self._notify(self._live)

    def log(self, message: str, level: LogLevel = LogLevel.INFO) -> None:
        self._live.append_log(level, message)
        self._notify(self._live)

    def set_subject(self, *, restore_point_id: str | None = None, local_copy_id: str | None = None) -> None:
        changes: dict[str, Any] = {}
        if restore_point_id is not None:
            changes["restore_point_id"] = restore_point_id
        if local_copy_id is not None:
            changes["local_copy_id"] = local_copy_id
        self._live.update(**changes)
        self._notify(self._live)

    def hold_restore_point(self, point_id: str) -> None:
        """Keep this restore point (one the job made) from being deleted until the operation ends."""
        self._live.holds.append(self._holds.hold_now(Held.RESTORE_POINT, point_id))

    async def hold_existing(self, kind: Held, thing_id: str) -> Hold:
        """Hold something the job found, until the operation ends; the caller checks after
        this that it still exists (a delete under way is waited for)."""
        hold = await self._holds.hold(kind, thing_id)
        self._live.holds.append(hold)
        return hold

    def release(self, kind: Held, thing_id: str) -> None:
        """Let go of this operation's holds on a thing (e.g. before it deletes it itself)."""
        for hold in [h for h in self._live.holds if h.key == (kind, thing_id)]:
            hold.release()
            self._live.holds.remove(hold)

    def update_params(self, **values: Any) -> None:
        """Record more about the operation (shown to clients), e.g. a restore point it made."""
        self._live.update(params={**self._live.op.params, **values})
        self._notify(self._live)

    def forbid_cancel(self, reason: str) -> None:
        """The point of no return: stop here if a cancel came first, else refuse cancels from
        now on, and let a shutdown leave the operation to its start-up recovery."""
        self.checkpoint()
        self._live.cancellable = False
        self._live.no_cancel_reason = reason

    async def flush(self) -> None:
        """Write the state and every log line so far to the database now, not within 200 ms:
        what a client has seen before a crash is then what it reads after it."""
        if self._flush is not None:
            await self._flush()

    async def run_blocking(
        self,
        work: Callable[[Callable[[int], None], Callable[[], bool]], T],
        *,
        total: int,
        start: float,
        end: float,
        stage: str | None = None,
    ) -> T:
        """Run blocking `work(on_bytes, should_stop)` in a thread, turning the bytes it
        reports into progress from `start` to `end`. The thread only bumps a counter; the
        loop publishes it, so operation state is never touched off the loop."""
        done = 0

        def on_bytes(count: int) -> None:
            nonlocal done
            done += count

        may_run = self._live.may_run

        def should_stop() -> bool:
            # A background operation waits here (between two reads) while it yields; a cancel
            # ends the wait within YIELD_CANCEL_CHECK.
            while not may_run.is_set() and not self.cancel_requested:
                may_run.wait(YIELD_CANCEL_CHECK)
            return self.cancel_requested

        if stage is not None:
            self.progress(start, stage)
        task = asyncio.ensure_future(asyncio.to_thread(work, on_bytes, should_stop))
        while not task.done():
            await asyncio.wait({task}, timeout=PROGRESS_INTERVAL)
            self._say_yields()
            self.progress(start + (end - start) * min(1.0, done / max(total, 1)))
        self._say_yields()
        return task.result()

    def _say_yields(self) -> None:
        """Log the start and the end of each pause a background operation makes for a create."""
        live = self._live
        if not live.background or live.yielded == (not live.may_run.is_set()):
            return
        live.yielded = not live.yielded
        if live.yielded:
            self.log("Paused: a restore point is being created; this goes on once it is made.")
        else:
            self.log("Going on: the restore point was made.")

    @property
    def entry_delay(self) -> float:
        """The test-only per-item delay (BACKUPS_TEST_ENTRY_DELAY), for work done in a thread."""
        return self._entry_delay

    def checkpoint(self) -> None:
        """Stop here if a cancel was requested; jobs call this between items."""
        if self.cancel_requested:
            raise OperationCancelled(self._live.cancel_reason)

    async def between_parts(self) -> None:
        """Between two parts of a background operation's work on the event loop (a manifest
        read in parts): wait while it yields (a restore point being created, whose steps share
        the loop), then stop here if a cancel was requested."""
        live = self._live
        if not live.may_go_on.is_set() and not self.cancel_requested:
            go_on = asyncio.ensure_future(live.may_go_on.wait())
            cancelled = asyncio.ensure_future(live.cancel_event.wait())
            await asyncio.wait({go_on, cancelled}, return_when=asyncio.FIRST_COMPLETED)
            go_on.cancel()
            cancelled.cancel()
        self.checkpoint()

    async def hold(self) -> None:
        """Wait until a cancel (or a shutdown) is requested, then stop (test pauses)."""
        await self._live.cancel_event.wait()
        self.checkpoint()

    async def pace(self) -> None:
        """The test-only per-item delay (BACKUPS_TEST_ENTRY_DELAY), cut short by cancel."""
        if self._entry_delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._live.cancel_event.wait(), self._entry_delay)
            # A line per pause, so tests and benchmarks can watch a log grow line by line.
            self.log(f"Paused {self._entry_delay:g} s after an item (test delay).", LogLevel.DEBUG)
        else:
            await asyncio.sleep(0)
        self.checkpoint()


def finished(op: Operation, status: OperationStatus, error: OperationError | None) -> Operation:
    """The operation in its final status, with the stage and time that go with it."""
    progress = 1.0 if status is OperationStatus.SUCCEEDED else op.progress
    stage = {
        OperationStatus.SUCCEEDED: "Done",
        OperationStatus.FAILED: "Failed",
        OperationStatus.CANCELLED: "Cancelled",
        OperationStatus.INTERRUPTED: "Interrupted",
    }[status]
    return dataclasses.replace(
        op, status=status, error=error, progress=progress, stage=stage, finished_at=datetime.now(UTC)
    )
