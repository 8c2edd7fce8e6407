"""Applying a restore point to the running system: start one, and finish one after a restart.

Crash safety rests on the apply journal (storage/apply_journal.py), written before every
change of phase:
- PREPARING (verify, snapshot of the state before): nothing has changed. A new start ends
  the operation FAILED (INTERRUPTED_BEFORE_CHANGES) and removes the safety restore point.
- APPLYING: a new start rolls forward: every source is applied again (applies are atomic
  per source and idempotent, and the content is in the store), then the restart step runs.
- ROLLING_BACK: a new start applies the snapshot of the state before again, ends FAILED.
- RESTARTING: every source is applied; a new start finishes (without launching a restart
  command a second time) and ends SUCCEEDED.
- FINISHED: the outcome is decided; a new start only records it.
Rolling forward rather than back after a crash: the user asked for the new state, the
content is verified and present, and it needs no snapshot of a state half replaced.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Sequence

from server.model.errors import (
    ConfirmationRequired,
    Conflict,
    InvalidInput,
    OperationErrorCode,
    OperationFailed,
    quoted,
)
from server.model.ids import new_id
from server.model.item_merge import ItemChoice, ItemSelection
from server.model.items import SETTINGS_SOURCE
from server.model.names import each_once
from server.model.records import LogLevel, Operation, OperationKind
from server.operations.holds import Held
from server.operations.live import OperationContext
from server.operations.runner import OperationRunner
from server.services.apply.resume import resume_run
from server.services.apply.run import ApplyRun, ApplyTools
from server.services.items.selection import check_items, check_settings
from server.services.system import SystemState
from server.storage.apply_journal import ApplyPhase, JournalRecord, JournalUnreadable

log = logging.getLogger(__name__)


class ApplyService:
    def __init__(self, *, runner: OperationRunner, tools: ApplyTools) -> None:
        self._runner = runner
        self._t = tools
        self._watchers: set[asyncio.Task[None]] = set()
        runner.on_leftover(OperationKind.APPLY_RESTORE_POINT, self._recover)

    async def start(
        self,
        *,
        restore_point_id: str,
        confirm: str,
        create_safety_restore_point: bool,
        requested_by: str | None,
        sources: Sequence[str] | None = None,
        expected_fingerprint: str | None = None,
        items: Sequence[ItemSelection] | None = None,
        restart: bool | None = None,
    ) -> Operation:
        """Start applying a restore point: exclusive, and only with `confirm` equal to its id.

        `sources`: apply only these (INVALID_INPUT for a name not configured); none: all.
        `expected_fingerprint`: CONFLICT when the configuration's fingerprint differs (it
        changed since the preview); checked now and again once maintenance has begun.
        `items`: put back only these items (services/items/selection.py checks them); not
        together with `sources`. `restart`: None restarts unless only settings items go back."""
        if confirm != restore_point_id:
            raise ConfirmationRequired(
                "applying replaces the current configuration and restarts the system: to confirm, "
                f"pass the restore point's id ({restore_point_id}) as `confirm`",
                field="confirm",
            )
        if items is not None and sources:
            raise InvalidInput(
                "name either `sources` (whole sources) or `items` (items in them), not both", field="items"
            )
        only = self._chosen(sources)
        point, hold = await self._t.restore_points.hold(restore_point_id, field="restorePointId")
        choices: tuple[ItemChoice, ...] | None = None
        try:
            await self._t.restore_points.refuse_if_damaged(point.id)
            if items is not None:
                entries = await self._t.restore_points.entries(point.id)
                choices = check_items(items, point.id, entries, self._t.sources)
                await check_settings(choices, entries, self._t.sources, self._t.store)
                touched = {choice.source for choice in choices}
                only = [source.name for source in self._t.sources if source.name in touched]
            if expected_fingerprint is not None and await self._t.system.fingerprint() != expected_fingerprint:
                raise Conflict(
                    "the configuration changed since the preview (its fingerprint differs): nothing was "
                    "changed; look at the preview again and apply with its new fingerprint",
                    field="expectedFingerprint",
                )
        except BaseException:
            hold.release()
            raise
        if restart is None:  # a setting is read as it changes; files and tables are read at a start
            restart = choices is None or any(self._kind(choice.source) != SETTINGS_SOURCE for choice in choices)
        run = ApplyRun(self._t)
        keep = create_safety_restore_point
        safety_id = new_id("rp")  # reserved now, so the journal can name it before it exists

        async def job(ctx: OperationContext) -> None:
            work = run.start(ctx, point.id, keep, safety_id, only, expected_fingerprint, choices, restart)
            await self._guarded(run, work, ctx.operation.id)

        params: dict[str, object] = {"createSafetyRestorePoint": keep}
        if choices:
            params["items"] = [choice.shown for choice in choices]
        elif only:
            params["sources"] = list(only)
        params["restart"] = restart

        op = await self._runner.submit(
            OperationKind.APPLY_RESTORE_POINT,
            job,
            requested_by=requested_by,
            restore_point_id=point.id,
            params=params,
            exclusive=True,
            durable_log=True,
            holds=[hold],
        )
        self._t.system.enter(SystemState.APPLYING, op.id)
        self._watch(op.id)
        return op

    def _kind(self, name: str) -> str:
        return next(source.kind for source in self._t.sources if source.name == name)

    def _chosen(self, names: Sequence[str] | None) -> list[str] | None:
        """The sources named, in configured order; None for all. INVALID_INPUT for an unknown name."""
        if not names:
            return None
        configured = [source.name for source in self._t.sources]
        unknown = [name for name in names if name not in configured]
        if unknown:
            raise InvalidInput(
                f"no source named {quoted(unknown[0])} is configured (sources: {', '.join(configured)}); "
                "nothing was changed",
                field="sources",
            )
        each_once(names, what="source", field="sources")
        return [name for name in configured if name in set(names)]

    async def _guarded(self, run: ApplyRun, work: Awaitable[None], op_id: str) -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise  # the process is stopping: the journal, not this task, decides what happens
        except BaseException:
            await self._end(run, op_id)
            raise
        await self._end(run, op_id)

    async def _end(self, run: ApplyRun, op_id: str) -> None:
        await run.release()
        # Back to RUNNING before the operation is seen to finish, so a client that sees it
        # done can change settings at once.
        if self._t.system.status.operation_id == op_id:
            self._t.system.enter(SystemState.RUNNING)

    def _watch(self, op_id: str) -> None:
        """Once the operation is closed (its final state stored), remove its journal."""
        live = self._runner.live(op_id)
        assert live is not None and live.task is not None
        task = live.task

        async def after() -> None:
            await asyncio.wait([task])
            if task.cancelled():
                return  # stopped with the server: the journal stays for the next start
            if self._t.system.status.operation_id == op_id:
                self._t.system.enter(SystemState.RUNNING)  # e.g. cancelled before its job began
            try:
                await asyncio.to_thread(self._t.journal.clear, op_id)
            except OSError:
                log.exception("could not remove the apply journal of %s", op_id)

        watcher = asyncio.create_task(after(), name=f"apply-watch-{op_id}")
        self._watchers.add(watcher)
        watcher.add_done_callback(self._watchers.discard)

    # -- start-up -------------------------------------------------------------------------

    async def _recover(self, op: Operation) -> bool:
        """An apply a stopped process left QUEUED or RUNNING: resume it from its journal."""
        try:
            record = await asyncio.to_thread(self._t.journal.read)
        except JournalUnreadable as error:
            kept = await asyncio.to_thread(self._t.journal.set_aside)
            log.error("the apply journal could not be read (%s); kept as %s", error, kept)
            self._resume(op, None, unreadable=str(kept))
            return True
        if record is not None and record.operation_id != op.id:
            record = None  # another apply's journal: tidy() deals with it
        self._resume(op, record)
        return True

    def _resume(self, op: Operation, record: JournalRecord | None, unreadable: str | None = None) -> None:
        pins = [e.sha256 for e in record.rollback_entries if e.sha256] if record else []
        self._t.store.pin(pins)  # before the start-up sweep, which would collect them
        run = ApplyRun(self._t, record, pins)

        async def job(ctx: OperationContext) -> None:
            if unreadable is not None:
                ctx.log(f"The apply journal could not be read; it is kept as {unreadable}.", LogLevel.ERROR)
                raise OperationFailed(
                    OperationErrorCode.JOURNAL_UNREADABLE,
                    "the server stopped during the apply and its journal could not be read: the "
                    "configuration may be partly replaced; compare it with system.matchesRestorePoint "
                    "and apply the safety restore point if needed",
                )
            # Start-up leaves side folders while an apply is to be resumed: the killed
            # process's trash (the old tree, secrets and all) goes once the apply has ended,
            # while it is still the exclusive operation (no new apply stages meanwhile).
            try:
                await self._guarded(run, resume_run(run, ctx), op.id)
            except asyncio.CancelledError:
                raise  # stopping again: the next start resumes it and cleans up after it
            except BaseException:
                await run.discard_side_folders()
                raise
            await run.discard_side_folders()

        # Nothing can be deleting it yet: the server is starting. Held as a new apply holds it.
        holds = [self._runner.holds.hold_now(Held.RESTORE_POINT, op.restore_point_id)] if op.restore_point_id else []
        self._runner.resume(op, job, exclusive=True, durable_log=True, holds=holds)
        self._t.system.enter(SystemState.APPLYING, op.id)
        self._watch(op.id)
        log.warning("resuming apply %s after a restart (journal phase %s)", op.id, record.phase if record else None)

    async def tidy(self) -> None:
        """After start-up recovery: remove a journal whose operation has already finished."""
        try:
            record = await asyncio.to_thread(self._t.journal.read)
        except JournalUnreadable as error:
            kept = await asyncio.to_thread(self._t.journal.set_aside)
            log.error("the apply journal could not be read (%s); kept as %s", error, kept)
            return
        if record is None or self._runner.live(record.operation_id) is not None:
            return
        op = await self._runner.history.get(record.operation_id)
        if record.phase not in (ApplyPhase.PREPARING, ApplyPhase.FINISHED):
            log.error(
                "the apply journal says %s for operation %s, which is %s: check the configuration",
                record.phase,
                record.operation_id,
                op.status if op else "unknown",
            )
        await asyncio.to_thread(self._t.journal.clear, record.operation_id)
