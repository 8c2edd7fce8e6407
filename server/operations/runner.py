"""Runs operations in the background: queue, progress, batched log, cancel, restart survival."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from server.model.errors import Busy, InvalidInput, NotFound, OperationErrorCode, OperationFailed, StorageFull, quoted
from server.model.ids import is_well_formed, new_id
from server.model.records import (
    LogEntry,
    LogLevel,
    Operation,
    OperationError,
    OperationKind,
    OperationStatus,
)
from server.model.url_credentials import mask_url_credentials
from server.operations.fanout import ChangeFanout
from server.operations.history import OperationHistory
from server.operations.holds import Hold, HoldRegistry
from server.operations.live import (
    LOG_RESERVE_BLOCK,
    LiveOperation,
    OperationCancelled,
    OperationContext,
    finished,
)
from server.operations.state_writer import StateWriter
from server.storage.db import operations_repo as repo
from server.storage.db.database import Database
from server.storage.full import files_full, full_detail, is_storage_full

log = logging.getLogger(__name__)

Job = Callable[[OperationContext], Awaitable[None]]
# Takes over an operation a stopped server left QUEUED or RUNNING; returns whether it did.
Recovery = Callable[[Operation], Awaitable[bool]]

LOG_PAGE = 500
# Storing an operation's final state is retried until it lands: soon at first, then at
# most this often (a full disk may take an administrator minutes to clear).
FINAL_RETRY_FIRST = 0.1
FINAL_RETRY_MAX = 2.0
# How long an apply waits for the background operations (verifications) it stops to end: they
# stop at their next read, well within a second; past this the apply is BUSY.
PREEMPT_WAIT = 5.0
# What a background operation yields to: its blocking work pauses while one of these is queued
# or running (a create is never slowed by a verification's reading).
YIELDS_TO = frozenset({OperationKind.CREATE_RESTORE_POINT})


class OperationRunner:
    """Owns every unfinished operation; the only writer of operation rows while it runs."""

    def __init__(
        self, db: Database, *, concurrency: int = 2, entry_delay: float = 0.0, final_write_delay: float = 0.0
    ) -> None:
        self._db = db
        self._slots = asyncio.Semaphore(concurrency)
        self._entry_delay = entry_delay
        self._final_write_delay = final_write_delay  # a test seam (server/test_seams.py)
        self._live: dict[str, LiveOperation] = {}
        self._writer = StateWriter(db)
        self.history = OperationHistory(db, self._live)  # get, page, read_log
        self.changes = ChangeFanout()
        self.holds = HoldRegistry()  # what operations (and downloads) read: deletes get BUSY
        self._exclusive: str | None = None
        self._recoveries: dict[OperationKind, Recovery] = {}
        self._end_listeners: list[Callable[[Operation], None]] = []
        # Per leftover at start-up, the highest log number its previous run may have shown;
        # a resumed one numbers its lines after it.
        self._leftover_numbering: dict[str, int] = {}
        # Checks and registration in submit span an await (the insert); serialising them
        # keeps two exclusive submissions from both passing the checks.
        self._submit_lock = asyncio.Lock()

    # -- life cycle -------------------------------------------------------------------

    async def start(self) -> None:
        await self._interrupt_leftovers()
        self._writer.start(self._live.values)

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop running operations as INTERRUPTED (a server shutdown), then flush.

        An operation past its point of no return is not cancelled: it gets the same time to
        finish, and if it has not, its task is stopped and its recovery finishes it at start.
        """
        for live in list(self._live.values()):
            if live.cancellable:
                self._request_cancel(live, "shutdown")
        tasks = [live.task for live in self._live.values() if live.task]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)
        for live in list(self._live.values()):
            if live.ended.is_set() and live.task and not live.task.done():
                # Its end could not be stored in time (a full disk): the next start says INTERRUPTED.
                log.error(
                    "operation %s ended %s, but that could not be stored before stopping", live.op.id, live.op.status
                )
                live.task.cancel()
                await asyncio.gather(live.task, return_exceptions=True)
            elif not live.cancellable and live.task and not live.task.done():
                live.append_log(
                    LogLevel.WARNING, "The server is stopping: this operation finishes when it starts again."
                )
                live.task.cancel()
                await asyncio.gather(live.task, return_exceptions=True)
        await self._writer.stop(self._live.values())

    def on_end(self, listener: Callable[[Operation], None]) -> None:
        """Call `listener` with each operation run here as it ends (succeeded, failed, cancelled;
        not one interrupted by a shutdown). It runs on the operation's path: it must only note
        the operation (a queue, a task), never wait; an error in it is logged, never raised."""
        self._end_listeners.append(listener)

    def on_leftover(self, kind: OperationKind, recover: Recovery) -> None:
        """Let `recover` take over leftovers of `kind` at start-up (e.g. resume them), before
        the rest are marked INTERRUPTED. Register before start()."""
        self._recoveries[kind] = recover

    async def _interrupt_leftovers(self) -> None:
        """Operations a stopped server left QUEUED or RUNNING: recover them, or say they stopped."""
        async with self._db.read() as session:
            leftovers = await repo.active_operations(session)
            for op in leftovers:
                self._leftover_numbering[op.id] = await repo.log_numbered_through(session, op.id)
        remaining = []
        for op in leftovers:
            recover = self._recoveries.get(op.kind)
            if recover is None or not await recover(op):
                remaining.append(op)
        numbering, self._leftover_numbering = self._leftover_numbering, {}
        if not remaining:
            return
        async with self._db.write() as session:
            for op in remaining:
                # Numbered after every number the crashed run may have shown (a gap where the
                # lines it lost were): a client resuming after the last line it saw gets this.
                entry = LogEntry(
                    sequence=numbering[op.id] + 1,
                    at=datetime.now(UTC),
                    level=LogLevel.ERROR,
                    message=f"Interrupted: the server stopped while this operation was {op.status.lower()}.",
                )
                final = finished(
                    dataclasses.replace(op, last_sequence=entry.sequence),
                    OperationStatus.INTERRUPTED,
                    OperationError(OperationErrorCode.INTERRUPTED, "The server stopped before the operation finished."),
                )
                await repo.save_operation(session, final)
                await repo.append_log(session, op.id, [entry])
                log.warning("operation %s marked INTERRUPTED at start-up", op.id)

    # -- starting and controlling -----------------------------------------------------

    async def submit(
        self,
        kind: OperationKind,
        job: Job,
        *,
        requested_by: str | None,
        restore_point_id: str | None = None,
        local_copy_id: str | None = None,
        params: dict[str, Any] | None = None,
        exclusive: bool = False,
        durable_log: bool = False,
        holds: Sequence[Hold] = (),
        background: bool = False,
    ) -> Operation:
        """Record a QUEUED operation and run `job` in the background; returns at once.

        `exclusive`: nothing else may run beside it; background operations under way are
        stopped (CANCELLED, their log says why) rather than waited for.
        `background` (a verification): it takes no slot (never delays another operation's
        start), its blocking work pauses while a create is queued or running, and an exclusive
        submission stops it. `durable_log`: readers see log lines
        only once stored (for jobs that resume after a crash). `holds`: taken by the caller
        when it accepted the request; the operation keeps them until it ends (and they are
        released here if it cannot be started).
        """
        try:
            async with self._submit_lock:
                return await self._submit(
                    kind,
                    job,
                    requested_by,
                    restore_point_id,
                    local_copy_id,
                    params,
                    exclusive,
                    durable_log,
                    holds,
                    background,
                )
        except BaseException:
            for hold in holds:
                hold.release()
            raise

    async def _submit(
        self,
        kind: OperationKind,
        job: Job,
        requested_by: str | None,
        restore_point_id: str | None,
        local_copy_id: str | None,
        params: dict[str, Any] | None,
        exclusive: bool,
        durable_log: bool,
        holds: Sequence[Hold],
        background: bool,
    ) -> Operation:
        if self._exclusive is not None:
            raise Busy(f"operation {self._exclusive} is applying a restore point; try again after it")
        if exclusive:
            await self._stop_background()
        if exclusive and self._unfinished():
            raise Busy("other operations are running; try again when they have finished")
        op = Operation(
            id=new_id("op"),
            kind=kind,
            status=OperationStatus.QUEUED,
            progress=0.0,
            stage="Queued",
            created_at=datetime.now(UTC),
            started_at=None,
            finished_at=None,
            requested_by=requested_by,
            dismissed=False,
            error=None,
            restore_point_id=restore_point_id,
            local_copy_id=local_copy_id,
            params=params or {},
        )
        # Its first block of log numbers is reserved with the insert, before anyone can read it.
        reserve = 0 if durable_log else LOG_RESERVE_BLOCK
        live = LiveOperation(
            op=op, durable_log=durable_log, holds=list(holds), reserved_through=reserve, background=background
        )
        live.append_log(LogLevel.INFO, f"Queued by {requested_by or 'anonymous'}.")
        async with self._db.write() as session:
            await repo.add_operation(session, op, log_reserved_through=live.reserved_through)
        if exclusive:
            self._exclusive = op.id
        self._live[op.id] = live
        self._set_yields()
        live.task = asyncio.create_task(self._run(live, job), name=f"operation-{op.id}")
        self._publish(live)
        return live.op

    def resume(
        self, op: Operation, job: Job, *, exclusive: bool = False, durable_log: bool = False, holds: Sequence[Hold] = ()
    ) -> Operation:
        """Run `job` for an operation a stopped server left unfinished (from a recovery):
        same id, its log continuing after the last stored line; it keeps `holds` until it ends."""
        numbered = self._leftover_numbering.get(op.id, op.last_sequence)
        live = LiveOperation(
            op=op,
            flushed_through=op.last_sequence,
            reserved_through=numbered,
            numbered_through=numbered,
            durable_log=durable_log,
            holds=list(holds),
        )
        if exclusive:
            self._exclusive = op.id
        self._live[op.id] = live
        live.task = asyncio.create_task(self._run(live, job, resumed=True), name=f"operation-{op.id}")
        self._publish(live)
        return live.op

    async def _stop_background(self) -> None:
        """Before an exclusive operation: when only background operations are under way, stop
        them and wait (at most PREEMPT_WAIT) for their ends; with anything else under way the
        caller is BUSY anyway, and they go on."""
        under_way = self._unfinished()
        if not under_way or not all(live.background for live in under_way):
            return
        for live in under_way:
            live.update(params={**live.op.params, "preempted": True})
            live.append_log(LogLevel.INFO, "An apply was asked for: stopping (a verification never runs beside one).")
            self._request_cancel(live, "preempted")
            self._publish(live)
        waits = [asyncio.ensure_future(live.ended.wait()) for live in under_way]
        _, pending = await asyncio.wait(waits, timeout=PREEMPT_WAIT)
        for wait in pending:
            wait.cancel()

    def _set_yields(self) -> None:
        """Let background operations read, or pause them while something they yield to goes."""
        yielding = any(live.op.kind in YIELDS_TO for live in self._unfinished())
        for live in self._live.values():
            if live.background:
                if yielding:
                    live.may_run.clear()
                    live.may_go_on.clear()
                else:
                    live.may_run.set()
                    live.may_go_on.set()

    def exclusive_operation(self) -> str | None:
        """The id of the exclusive operation (an apply) that is queued or running, if any."""
        return self._exclusive

    async def cancel(self, op_id: str) -> Operation:
        live = self._live.get(op_id)
        if live is None or live.ended.is_set():
            op = await self.history.get(op_id)
            if op is None:
                raise NotFound(f"no operation with id {quoted(op_id)}", field="id")
            raise InvalidInput(f"operation {op_id} already finished ({op.status})", field="id")
        if not live.cancellable:
            raise InvalidInput(f"operation {op_id} can no longer be cancelled: {live.no_cancel_reason}", field="id")
        self._request_cancel(live, "cancel")
        await live.ended.wait()  # the final state in memory; storing it may still be retried
        return live.op

    async def dismiss(self, op_id: str) -> Operation:
        if (live := self._live.get(op_id)) is not None and live.ended.is_set():
            raise Busy(
                f"operation {op_id} has finished but its final state is not stored yet; try again shortly",
                field="id",
            )
        if live is not None:
            raise InvalidInput(
                f"operation {op_id} is still running: cancel it first, or wait for it to finish",
                field="id",
            )
        if not is_well_formed(op_id, "op"):
            raise NotFound(f"no operation with id {quoted(op_id)}", field="id")
        async with self._db.write() as session:
            op = await repo.get_operation(session, op_id)
            if op is None:
                raise NotFound(f"no operation with id {quoted(op_id)}", field="id")
            op = dataclasses.replace(op, dismissed=True)
            await repo.save_operation(session, op)
        self.changes.announce(op.id)
        return op

    async def dismiss_finished(self) -> list[str]:
        """Dismiss every finished operation whose final state is stored: their ids (running ones,
        and ones whose final state is still being stored, stay)."""
        async with self._db.write() as session:
            ids = await repo.dismiss_finished(session, keep=list(self._live))
        for op_id in ids:
            self.changes.announce(op_id)
        return ids

    def _request_cancel(self, live: LiveOperation, reason: str) -> None:
        if live.cancel_reason is None:
            live.cancel_reason = reason
            live.cancel_event.set()

    # -- reading ------------------------------------------------------------------------

    def stats(self) -> dict[str, int]:
        """Counts for /health: what is running, and who is listening."""
        return {
            "running": len(self._unfinished()),
            "changeListeners": len(self.changes),
            "waiters": sum(live.signal.waiting + live.log_signal.waiting for live in self._live.values()),
        }

    def live(self, op_id: str) -> LiveOperation | None:
        return self._live.get(op_id)

    def _unfinished(self) -> list[LiveOperation]:
        """Live operations still queued or running (not those only waiting to store their end)."""
        return [live for live in self._live.values() if not live.ended.is_set()]

    # -- operationsChanged fan-out --------------------------------------------------------

    def _publish(self, live: LiveOperation) -> None:
        if live.reservation_wanted() is not None:
            self._writer.flush_soon()  # before the job's lines are held back for want of one
        live.dirty = True
        live.signal.fire()
        self.changes.announce(live.op.id)

    # -- running --------------------------------------------------------------------------

    async def _run(self, live: LiveOperation, job: Job, resumed: bool = False) -> None:
        context = OperationContext(
            live, self._publish, self._entry_delay, flush=lambda: self._writer.flush(live), holds=self.holds
        )
        status, error = OperationStatus.SUCCEEDED, None
        try:
            if not live.background:
                await self._take_slot(live)
            try:
                context.checkpoint()
                started = live.op.started_at if resumed and live.op.started_at else datetime.now(UTC)
                live.update(status=OperationStatus.RUNNING, started_at=started, stage="Starting")
                if not resumed:
                    live.append_log(LogLevel.INFO, "Started.")
                self._publish(live)
                await job(context)
                context.checkpoint()
            finally:
                if not live.background:
                    self._slots.release()
        except OperationCancelled:
            if live.cancel_reason == "preempted":
                status = OperationStatus.CANCELLED
                live.append_log(
                    LogLevel.WARNING,
                    "Stopped: a restore point is being applied, and a verification never runs beside an apply. "
                    "What it found so far and had not stored is read again by its next run.",
                )
            elif live.cancel_reason == "shutdown":
                status = OperationStatus.INTERRUPTED
                error = OperationError(
                    OperationErrorCode.INTERRUPTED, "The server stopped before the operation finished."
                )
                live.append_log(LogLevel.WARNING, "Interrupted: the server is shutting down.")
            else:
                status = OperationStatus.CANCELLED
                live.append_log(LogLevel.WARNING, "Cancelled; everything it had written was removed.")
        except (OperationFailed, StorageFull) as failure:
            code = OperationErrorCode.STORAGE_FULL if isinstance(failure, StorageFull) else failure.code
            message = mask_url_credentials(failure.message)  # stored and shown to every viewer
            status, error = OperationStatus.FAILED, OperationError(code, message)
            live.append_log(LogLevel.ERROR, f"Failed: {message}")
        except Exception as unexpected:
            status, error = OperationStatus.FAILED, self._unexpected(live, unexpected)
        if status is OperationStatus.SUCCEEDED:
            live.append_log(LogLevel.INFO, "Finished.")
        live.op = finished(live.op, status, error)
        if status is not OperationStatus.INTERRUPTED:
            self._tell_end(live.op)
        await self._close(live)

    def _tell_end(self, op: Operation) -> None:
        for listener in self._end_listeners:
            try:
                listener(op)
            except Exception:
                log.exception("a listener of operation ends failed on %s", op.id)

    def _unexpected(self, live: LiveOperation, error: Exception) -> OperationError:
        """The error for an exception no job turned into a code: STORAGE_FULL when it was a
        full disk (a job that knows what it was writing names it itself), else INTERNAL."""
        filename = getattr(error, "filename", None)
        full = files_full(error, str(filename) if filename else "the disk")
        if full is not None:
            log.warning("operation %s failed: %s", live.op.id, full.message)
            live.append_log(LogLevel.ERROR, f"Failed: {full.message}")
            return OperationError(OperationErrorCode.STORAGE_FULL, full.message)
        log.exception("operation %s failed unexpectedly", live.op.id)
        live.append_log(LogLevel.ERROR, "Failed: an unexpected error stopped the operation.")
        return OperationError(
            OperationErrorCode.INTERNAL, "An unexpected error stopped the operation; see the server log."
        )

    async def _take_slot(self, live: LiveOperation) -> None:
        """Wait for a free slot; a cancel while still queued ends the wait at once."""
        slot = asyncio.ensure_future(self._slots.acquire())
        cancelled = asyncio.ensure_future(live.cancel_event.wait())
        await asyncio.wait({slot, cancelled}, return_when=asyncio.FIRST_COMPLETED)
        cancelled.cancel()
        if slot.done() and not live.cancel_event.is_set():
            return
        if slot.done():
            self._slots.release()
        else:
            slot.cancel()
        raise OperationCancelled(live.cancel_reason)

    async def _close(self, live: LiveOperation) -> None:
        """Persist the final state and every log line, then let go of the operation.

        If that write fails (a full disk, a database away), the operation stays in memory in
        its final state, ended for readers and subscribers (never a stale RUNNING), while
        the write is retried with backoff until it lands."""
        live.dirty = True
        if self._exclusive != live.op.id:
            # Its job is over and its final state is what readers see now: what it held may be
            # deleted from here on (a script that sees it done and deletes at once gets no
            # BUSY while that state is stored). An apply keeps its hold until then: its
            # recovery after a crash in between reads the restore point again.
            self._release_holds(live)
        if live.background:
            # An apply that stopped it waits for it to have stopped reading, not for this write
            # (an fsync that the disk's queue of its cold reads may make slow).
            self._end(live)
        if self._final_write_delay:
            await asyncio.sleep(self._final_write_delay)
        try:
            await self._writer.flush(live)
        except Exception as error:
            self._end(live)
            await self._store_final(live, error)
        live.ended.set()
        self._release(live)
        live.closed = True
        del self._live[live.op.id]
        live.signal.fire()
        live.log_signal.fire()
        self.changes.announce(live.op.id)

    def _end(self, live: LiveOperation) -> None:
        """The final state is only in memory: followers may end, the next exclusive may start,
        and what it held may be deleted (its work is done)."""
        live.ended.set()
        self._release(live)
        live.signal.fire()
        live.log_signal.fire()
        self.changes.announce(live.op.id)

    @staticmethod
    def _release_holds(live: LiveOperation) -> None:
        for hold in live.holds:
            hold.release()
        live.holds.clear()

    def _release(self, live: LiveOperation) -> None:
        self._release_holds(live)
        if self._exclusive == live.op.id:
            self._exclusive = None
        self._set_yields()

    async def _store_final(self, live: LiveOperation, first_error: Exception) -> None:
        """Retry storing the final state until it lands, logging once when it starts failing
        and once when it lands (a full disk would otherwise log every try)."""
        full = is_storage_full(first_error)
        reason = full_detail(first_error) if full else f"{type(first_error).__name__}: {first_error}"
        log.error(
            "could not store the final state (%s) of operation %s: %s; retrying until it can",
            live.op.status,
            live.op.id,
            reason,
            exc_info=None if full else first_error,
        )
        delay, attempts = FINAL_RETRY_FIRST, 1
        while True:
            await asyncio.sleep(delay)
            delay = min(delay * 2, FINAL_RETRY_MAX)
            try:
                await self._writer.flush(live)
            except Exception:
                attempts += 1
                continue
            log.warning(
                "stored the final state (%s) of operation %s after %d failed attempts",
                live.op.status,
                live.op.id,
                attempts,
            )
            return
