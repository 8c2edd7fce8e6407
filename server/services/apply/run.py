"""One apply of a restore point, step by step, with a journal entry before every change of
phase, so that a new start can finish whatever a dead process left (see server/services/apply/service.py)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import NoReturn

from server.model.diffs.config_diff import compare
from server.model.errors import OperationErrorCode, OperationFailed
from server.model.item_merge import ItemChoice
from server.model.records import (
    LogLevel,
    ManifestEntry,
    OperationError,
    RestorePointOrigin,
)
from server.operations.holds import Held
from server.operations.live import OperationCancelled, OperationContext
from server.services.apply import in_place
from server.services.apply.items import merge_in_thread
from server.services.apply.plan import (
    ApplyPlan,
    find_source,
    group_by_source,
    make_plan,
    verify_content,
)
from server.services.apply.stage import checked_when_staged, discard_staged, stage_sources
from server.services.blob_keeper import BlobKeeper
from server.services.restart import RestartFailed, RestartStep
from server.services.restore_points import MAX_LABEL, RestorePointService
from server.services.settings_store import SettingsStore
from server.services.system import SystemMonitor, SystemState, same_content
from server.sources.base import PartialSource, ReadBack, Source, StagedApply, StagingSource
from server.storage.apply_journal import ApplyJournal, ApplyPhase, JournalRecord
from server.storage.blobs.content_store import ContentStore
from server.test_seams import StepControl

log = logging.getLogger(__name__)

NO_CANCEL = "it has begun replacing the configuration"
NO_RESTART = "the caller chose none (or the items it put back need none: settings only)."
MAX_LOGGED_CHANGES = 200  # the finished apply's log lists this many changed paths, then says how many more
BEFORE_CHANGES = OperationErrorCode.INTERRUPTED_BEFORE_CHANGES


@dataclass(frozen=True, slots=True)
class ApplyTools:
    """What an apply works with; shared by every run."""

    store: ContentStore
    keeper: BlobKeeper
    restore_points: RestorePointService
    sources: Sequence[Source]  # the configured sources, in their order
    settings: SettingsStore
    system: SystemMonitor
    journal: ApplyJournal
    restart: RestartStep
    steps: StepControl


class ApplyRun:
    """The state of one apply while its job runs: the journal record and the blobs it pins."""

    def __init__(self, tools: ApplyTools, record: JournalRecord | None = None, pins: Sequence[str] = ()) -> None:
        self._t = tools
        self.record = record
        self._pins = list(pins)  # the state before: kept from collection until the apply ends
        # Blobs the restore point being applied references: it is held until the operation
        # ends, so none of them can be collected when the pins are released (see release).
        self._held_digests: frozenset[str] = frozenset()
        # Source name -> its committed staged state: read back, and its replaced state removed at the end.
        self._committed: dict[str, StagedApply] = {}
        self._ctx: OperationContext | None = None

    @property
    def ctx(self) -> OperationContext:
        assert self._ctx is not None, "the run has not started"
        return self._ctx

    @property
    def tools(self) -> ApplyTools:
        return self._t

    def attach(self, ctx: OperationContext) -> None:
        """The operation this run reports to (a resumed run gets it from its new job)."""
        self._ctx = ctx

    @property
    def pins(self) -> list[str]:
        """Blobs kept from collection until the apply ends."""
        return self._pins

    @property
    def journal(self) -> JournalRecord:
        assert self.record is not None, "the run has no journal"
        return self.record

    # -- a new apply ----------------------------------------------------------------------

    async def start(
        self,
        ctx: OperationContext,
        point_id: str,
        keep_safety: bool,
        safety_id: str,
        only: Sequence[str] | None = None,
        expected_fingerprint: str | None = None,
        items: Sequence[ItemChoice] | None = None,
        restart: bool = True,
    ) -> None:
        """Verify, snapshot the state before, then replace every source (or those in `only`)
        and restart. With `expected_fingerprint`, refuse (CONFLICT) if the configuration no
        longer has it, before anything is touched. With `items` (their sources are `only`):
        the state before is captured first, and each source is replaced by it with the
        items put back (services/apply/items.py). `restart`: False skips the restart step."""
        self._ctx = ctx
        self.record = JournalRecord(
            operation_id=ctx.operation.id,
            restore_point_id=point_id,
            phase=ApplyPhase.PREPARING,
            safety_restore_point_id=safety_id,
            keep_safety_restore_point=keep_safety,
            only_sources=tuple(only) if only else None,
            items=tuple(items) if items else None,
            restart=restart,
            in_place=bool(items) and in_place.fits(self._t.sources, items or ()),
        )
        await self._advance(ApplyPhase.PREPARING)  # from here on a new start knows of the apply
        ctx.log(
            f"Applying restore point {point_id}. Maintenance: settings changes and new operations "
            "are refused until the apply has finished."
        )
        await self._t.settings.wait_for_writes()  # writes accepted just before maintenance land first
        if self.journal.in_place:
            try:
                if expected_fingerprint is not None:
                    await self._check_fingerprint(expected_fingerprint)
            except OperationFailed:
                await self.discard_preparation()
                raise
            await in_place.start(self)
            return
        staged: dict[str, StagedApply] = {}
        try:
            if expected_fingerprint is not None:
                await self._check_fingerprint(expected_fingerprint)
            if self.journal.items:
                # The items go into the sources as they are now: capture those first.
                before = await self._capture()
                await self._t.steps.reach(ctx, "safety")
                plan = await self.load_plan(log_untouched=True, current=before)
            else:
                plan = await self.load_plan(log_untouched=True)
            await self._check_partial(plan)
            hashed_later = checked_when_staged(plan)
            await verify_content(ctx.section(0.0, 0.05), plan, self._t.store, hashed_when_staged=hashed_later)
            staged = await stage_sources(ctx.section(0.05, 0.5), plan, self._t.store)
            await self._t.steps.reach(ctx, "verify")
            if not self.journal.items:
                before = await self._capture()
                await self._t.steps.reach(ctx, "safety")
            ctx.forbid_cancel(NO_CANCEL)
        except asyncio.CancelledError:
            raise  # the process is going away: the next start reads the journal
        except BaseException as error:
            await discard_staged(staged)
            await self.discard_preparation()
            if isinstance(error, OperationCancelled) and error.args[:1] == ("shutdown",):
                raise OperationFailed(
                    BEFORE_CHANGES, "the server stopped before the apply changed anything; nothing was changed"
                ) from None
            raise
        await self._advance(ApplyPhase.APPLYING, sources=plan.source_names, rollback_entries=tuple(before))
        await self.apply(plan, staged)

    async def load_plan(
        self, *, log_untouched: bool = False, current: Sequence[ManifestEntry] | None = None
    ) -> ApplyPlan:
        """What the apply replaces, from the restore point (and, for an item apply, the state
        before: `current`, else the journal's)."""
        point = await self._t.restore_points.get(self.journal.restore_point_id)
        if point is None:
            raise OperationFailed(
                OperationErrorCode.NOT_FOUND, f"restore point {self.journal.restore_point_id} no longer exists"
            )
        entries = await self._t.restore_points.entries(point.id)
        only = self.journal.only_sources
        plan, untouched = make_plan(point, entries, self._t.sources, only)
        self._held_digests = frozenset(entry.sha256 for entry in entries if entry.sha256)
        if items := self.journal.items:
            before = self.journal.rollback_entries if current is None else current
            plan, stored = await merge_in_thread(plan, items, before, self._t.store)
            self._pins.extend(stored)  # the merged documents: kept until the apply ends
            if log_untouched:
                self.ctx.log(
                    f"Putting back {len(items)} item(s): {', '.join(choice.shown for choice in items)}; everything "
                    "else in source(s) " + ", ".join(repr(n) for n in only or ()) + " stays as it is now."
                )
            return plan
        if log_untouched:
            for name in untouched:
                self.ctx.log(f"Source {name!r} is not in the restore point: it is left as it is.", LogLevel.WARNING)
            if only:
                left = [s.name for s in self._t.sources if s.name not in only]
                self.ctx.log(
                    f"Applying only source(s) {', '.join(repr(n) for n in only)}"
                    + (f"; {', '.join(repr(n) for n in left)} left as they are." if left else ".")
                )
        return plan

    async def _check_partial(self, plan: ApplyPlan) -> None:
        """A source putting back only some items refuses a live state they no longer fit (a
        table's columns changed since) now, while nothing has changed."""
        for source, _ in plan.steps:
            chosen = plan.chosen.get(source.name)
            if chosen and isinstance(source, PartialSource):
                try:
                    await source.check_only(chosen, self._t.store.open)
                except OperationFailed as failure:
                    self.ctx.log(f"{failure.message}.", LogLevel.ERROR)
                    raise

    async def _check_fingerprint(self, expected: str) -> None:
        """CONFLICT unless the configuration is still the one the caller previewed; checked
        once maintenance has begun, so no settings change can slip in after it."""
        now = await self._t.system.fingerprint()
        if now != expected:
            raise OperationFailed(
                OperationErrorCode.CONFLICT,
                f"the configuration changed since the preview (its fingerprint is now {now}, not "
                f"{expected}): nothing was changed; look at the preview again",
            )
        self.ctx.log("The configuration is still the one previewed (its fingerprint matches).")

    async def _capture(self) -> list[ManifestEntry]:
        """Store the current state of every source (of the touched ones, for an item apply):
        the safety restore point, or (when the caller opted out) an internal snapshot that only
        a rollback, and an item apply's merge, use."""
        keep = self.journal.keep_safety_restore_point
        section = self.ctx.section(0.5, 0.6, "Safety restore point" if keep else "Snapshot before applying")
        pinned: list[str] = []
        touched = self.journal.only_sources if self.journal.items else None
        try:
            tally = await self._t.restore_points.capture_all(section, pinned, only=touched)
        finally:
            self._pins.extend(pinned)
        entries = tally.entries
        if keep:
            label = (
                None
                if (point := await self._t.restore_points.get(self.journal.restore_point_id)) is None
                else point.label
            )
            await self.save_safety_point(
                entries, tally.stored_bytes, label, tally.manifest_id, row_counts=tally.row_counts
            )
        else:
            self.ctx.log(
                "No safety restore point was asked for: the current configuration is kept "
                "internally for a rollback, and removed when the apply ends."
            )
        return entries

    async def save_safety_point(
        self,
        entries: Sequence[ManifestEntry],
        stored: int,
        label: str | None,
        manifest_id: str | None = None,
        *,
        row_counts: Mapping[str, int] | None = None,
        items: Sequence[ItemChoice] | None = None,
    ) -> str:
        """Record the state before as the safety restore point; with `items`, it holds only
        those items (an in-place item apply) and is marked so: applying it puts back just them."""
        record = self.journal
        # In words: the label of what was applied (its id stays in the note); the id when it has none.
        title = f"Before applying '{label}'" if label else f"Before applying {record.restore_point_id}"
        point = self._t.restore_points.new_point(
            entries,
            stored,
            label=title[:MAX_LABEL],
            note=f"Made by operation {record.operation_id} before applying restore point {record.restore_point_id}.",
            origin=RestorePointOrigin.SAFETY,
            created_by=self.ctx.operation.requested_by,
            point_id=record.safety_restore_point_id,
        )
        self.ctx.hold_restore_point(point.id)  # the way back stays while the apply runs
        extra = [entry.sha256 for entry in entries if entry.sha256]
        self._t.store.pin(extra)  # record() releases one pin per blob; the run keeps its own
        await self._t.restore_points.record(
            point, entries, extra, manifest_id=manifest_id, row_counts=row_counts, items=items
        )
        self.ctx.update_params(safetyRestorePointId=point.id)
        self.ctx.log(f"Safety restore point {point.id} saved: {point.item_count} items, {point.size_bytes} bytes.")
        return point.id

    async def discard_preparation(self) -> None:
        """Nothing was changed: remove the safety restore point and the pins of this run."""
        safety_id = self.journal.safety_restore_point_id
        self.ctx.release(Held.RESTORE_POINT, safety_id)  # its own hold would make the delete BUSY
        try:
            if await self._t.restore_points.get(safety_id) is not None:
                await self._t.restore_points.delete(safety_id)
                self.ctx.log(f"Removed safety restore point {safety_id}: nothing was changed, so it is not needed.")
        except Exception:
            log.exception("could not remove safety restore point %s", safety_id)
        await self.discard_side_folders()
        if self.journal.in_place:
            await in_place.clear(self)
        await self.release()

    async def discard_side_folders(self) -> None:
        """Remove what applies left beside the staging sources' folders: a staged tree, and
        the trash folders of replaced trees (a killed process's removal never finished)."""
        for source in self._t.sources:
            if isinstance(source, StagingSource):
                try:
                    await asyncio.to_thread(source.discard_leftovers)
                except OSError:
                    log.exception("could not remove what staging source %s left", source.name)

    # -- replacing the sources ----------------------------------------------------------

    async def apply(self, plan: ApplyPlan, staged: dict[str, StagedApply] | None = None) -> None:
        """Replace every source: swap in what was staged, apply the others from the store."""
        ctx = self.ctx
        staged = dict(staged or {})
        count = len(plan.steps) or 1
        current = None
        try:
            await self._t.steps.reach(ctx, "applying")
            for index, (source, entries) in enumerate(plan.steps):
                current = source.name
                ctx.progress(0.6 + 0.25 * index / count, f"Applying {source.name}")
                chosen = plan.chosen.get(source.name)
                if chosen is None:
                    ctx.log(f"Replacing source {source.name!r} ({source.kind}) with {len(entries)} items.")
                else:
                    ctx.log(f"Putting back items in source {source.name!r} ({source.kind}); the rest stays as it is.")
                ready = staged.pop(source.name, None)
                if ready is not None:
                    await ready.commit()
                    self._committed[source.name] = ready
                elif chosen is not None and isinstance(source, PartialSource):
                    await source.apply_only(chosen, self._t.store.open)
                else:
                    await source.apply(entries, self._t.store.open)
                ctx.log(f"Source {source.name!r} replaced.")
                await self._t.steps.reach(ctx, f"applied:{source.name}")
        except Exception as error:  # not CancelledError: a stopping server rolls forward at start
            await discard_staged(staged)
            await self.roll_back(self.cause(current, error))
        await self._restart(plan)

    def cause(self, source_name: str | None, error: Exception) -> OperationError:
        if isinstance(error, OperationFailed):
            detail = f"{error.message} ({error.code})"
        else:
            log.error("apply %s: source %s failed", self.journal.operation_id, source_name, exc_info=error)
            detail = f"an unexpected {type(error).__name__}; see the server log"
        what = f"source {source_name!r} could not be applied" if source_name else "the apply could not go on"
        return OperationError(OperationErrorCode.APPLY_FAILED, f"{what}: {detail}")

    async def roll_back(self, cause: OperationError) -> NoReturn:
        self.ctx.log(f"{cause.message[0].upper()}{cause.message[1:]}.", LogLevel.ERROR)
        self.ctx.log("Rolling back: restoring the configuration from before the apply.", LogLevel.WARNING)
        await self._advance(ApplyPhase.ROLLING_BACK, error=cause)
        await self._t.steps.reach(self.ctx, "rollback")
        await self.restore_before(cause)

    async def restore_before(self, cause: OperationError) -> NoReturn:
        """Apply the snapshot taken before to every source the apply touches; always raises."""
        ctx, record = self.ctx, self.journal
        ctx.progress(0.0, "Rolling back")
        before = group_by_source(record.rollback_entries)
        try:
            for name in record.sources:
                source = find_source(self._t.sources, name)
                await source.apply(before.get(name, []), self._t.store.open)
                ctx.log(f"Source {name!r} restored.")
        except Exception as error:
            log.error("apply %s: the rollback failed", record.operation_id, exc_info=error)
            kept = await self._keep_state_before()
            final = OperationError(
                OperationErrorCode.ROLLBACK_FAILED,
                f"{cause.message}; restoring the configuration from before also failed "
                f"({type(error).__name__}: {error}), so it may be partly replaced: apply restore point "
                f"{kept} to go back",
            )
            await self._advance(ApplyPhase.FINISHED, error=final)
            raise OperationFailed(final.code, final.message) from None
        final = OperationError(
            OperationErrorCode.APPLY_FAILED, f"{cause.message}. The configuration from before the apply was restored"
        )
        ctx.log("Rolled back: the configuration is as it was before the apply.", LogLevel.WARNING)
        await self._advance(ApplyPhase.FINISHED, error=final)
        await self._t.steps.reach(ctx, "finish")
        raise OperationFailed(final.code, final.message)

    async def _keep_state_before(self) -> str:
        """After a failed rollback the snapshot must outlive the apply: make it a restore point."""
        record = self.journal
        if record.keep_safety_restore_point:
            return record.safety_restore_point_id
        try:
            return await self.save_safety_point(record.rollback_entries, 0, None)
        except Exception:
            log.exception("could not save the state before apply %s", record.operation_id)
            return "(none: it could not be saved either)"

    # -- restarting and finishing -------------------------------------------------------

    async def _restart(self, plan: ApplyPlan | None) -> None:
        await self._advance(ApplyPhase.RESTARTING)
        await self.restart_step(self.run_restart)
        await self.finish(plan)

    async def restart_step(self, restart: Callable[[], Awaitable[None]]) -> None:
        """The restart step of a new run (RESTARTING recorded): `restart`, unless none was chosen."""
        if not self.journal.restart:
            await self._t.steps.reach(self.ctx, "restart")
            self.ctx.log("No restart: " + NO_RESTART)
            return
        self._t.system.enter(SystemState.RESTARTING, self.journal.operation_id)
        await self._t.steps.reach(self.ctx, "restart")
        await restart()

    async def run_restart(self, only: Sequence[str] | None = None, *, record: bool = True) -> None:
        """The restart (`only`: of these sources, in process); `record`: False when it need
        not be in the journal first (see in_place.finish)."""
        ctx = self.ctx
        ctx.progress(0.85, "Restarting")
        # Recorded before the command runs: a command that restarts this server is not run
        # again by the next start (it would restart the server again, for ever).
        if record:
            await self._advance(ApplyPhase.RESTARTING, restart_started=True)
        journal = self.journal
        env = {
            "BACKUPS_APPLY_OPERATION_ID": journal.operation_id,
            "BACKUPS_APPLY_RESTORE_POINT_ID": journal.restore_point_id,
        }
        try:
            await self._t.restart.run(ctx, env, only=only)
        except RestartFailed as failure:
            back = (
                f", or apply safety restore point {journal.safety_restore_point_id} to go back"
                if journal.keep_safety_restore_point
                else ""
            )
            final = OperationError(
                failure.code,
                f"{failure.detail}. The restore point's configuration is in place (every source was "
                f"applied before the restart): restart the affected services by hand{back}",
            )
            await self._advance(ApplyPhase.FINISHED, error=final)
            raise OperationFailed(final.code, final.message) from None

    async def finish(self, plan: ApplyPlan | None) -> None:
        ctx = self.ctx
        ctx.progress(0.95, "Finishing")
        if plan is not None:
            matches = await self._read_back(plan)
            await self._report_changes(plan)
            if matches:
                ctx.log(f"Read back: the configuration matches restore point {plan.point.id}.")
            else:
                ctx.log(
                    f"Read back: the configuration differs from restore point {plan.point.id} "
                    "(a source changed what it was given, or something changed it since).",
                    LogLevel.WARNING,
                )
        await self._advance(ApplyPhase.FINISHED, error=None)
        await self._t.steps.reach(ctx, "finish")
        ctx.log(f"Restore point {self.journal.restore_point_id} applied.")

    async def _read_back(self, plan: ApplyPlan) -> bool:
        """Whether every source applied holds the restore point's entries now. A staged state
        committed by this run checks its own source from what it wrote; the others (and all,
        after a restart of the server) are captured and compared."""
        rest: list[str] = []
        for source, entries in plan.steps:
            ready = self._committed.get(source.name)
            if isinstance(ready, ReadBack):
                if not await ready.read_back(entries):
                    return False
            else:
                rest.append(source.name)
        if not rest:
            return True
        current = await self._t.system.current_entries(only=rest)
        return same_content(current, [e for e in plan.applied_entries if e.source in rest])

    async def _report_changes(self, plan: ApplyPlan) -> None:
        """What the apply changed (from the state before, in the journal, to the restore
        point's): its summary in the operation (Operation.changes), its paths in the log."""
        before = [e for e in self.journal.rollback_entries if e.source in plan.source_names]
        order = list(plan.source_names)
        summary, changes = await asyncio.to_thread(compare, before, plan.applied_entries, order)
        self.ctx.update_params(changes=summary.as_params())
        self.ctx.log(
            f"What the apply changed: {summary.added} added, {summary.removed} removed, {summary.changed} changed, "
            f"{summary.unchanged} unchanged."
        )
        for change in changes[:MAX_LOGGED_CHANGES]:
            self.ctx.log(f"{change.kind.capitalize()}: {change.source}/{change.path}")
        if len(changes) > MAX_LOGGED_CHANGES:
            self.ctx.log(f"... and {len(changes) - MAX_LOGGED_CHANGES} more changes (not listed).")

    # -- bookkeeping -------------------------------------------------------------------

    async def advance(self, phase: ApplyPhase, **changes: object) -> None:
        await self._advance(phase, **changes)

    async def _advance(self, phase: ApplyPhase, **changes: object) -> None:
        """Store the log so far, then the new phase (durably) before acting on it."""
        await self.ctx.flush()
        self.record = self.journal.advance(phase, **changes)
        await asyncio.to_thread(self._t.journal.write, self.record)

    async def release(self) -> None:
        """Let go of the snapshot's blobs (what no restore point uses is collected) and of the
        state the apply replaced."""
        committed, self._committed = self._committed, {}
        for ready in committed.values():
            await ready.tidy()
        pins, self._pins = self._pins, []
        if pins:
            self._t.store.unpin(pins)
            # The state before mostly shares its blobs with the restore point applied, which
            # is still held: asking the database about those (tens of thousands) cost more
            # than the rest of the apply's finish.
            held = self._held_digests
            await self._t.keeper.collect(digest for digest in pins if digest not in held)
