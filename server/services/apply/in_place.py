"""An item apply at the items' own size (folder items): the chosen paths are captured as they
are now (the safety restore point holds just those, marked as covering only them), each
item's new state is staged beside it (every blob's SHA-256 checked as it is written), the
journal records each item's state before and after, and only then is each item renamed over
its target. A restart after a crash puts every item to its state after (APPLYING) or before
(ROLLING_BACK) again, whole: staging and renaming an item are idempotent. The read-back and
the report of what changed read the chosen paths only.

Settings and database items keep the merged whole-source path (services/apply/items.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, NoReturn

from server.model.diffs.config_diff import compare
from server.model.errors import OperationErrorCode, OperationFailed
from server.model.item_merge import ItemChoice
from server.model.items import is_under
from server.model.records import LogLevel, ManifestEntry, OperationError
from server.services.apply.plan import find_source
from server.sources.base import InPlaceSource, OpenBlob, Source, StagedItems
from server.storage.apply_journal import ApplyPhase

if TYPE_CHECKING:
    from server.services.apply.run import ApplyRun

MAX_LOGGED = 200


def fits(sources: Sequence[Source], choices: Sequence[ItemChoice]) -> bool:
    """Whether every chosen item can be put back in place (every source is a folder)."""
    by_name = {source.name: source for source in sources}
    return bool(choices) and all(
        c.pointer is None and isinstance(by_name.get(c.source), InPlaceSource) for c in choices
    )


def _paths(choices: Sequence[ItemChoice], source: str) -> list[str]:
    """The source's chosen paths; one inside another chosen folder goes with that folder."""
    mine = [c.path for c in choices if c.source == source]
    return [p for p in mine if not any(is_under(p, other) and p != other for other in mine)]


def _chosen(entries: Sequence[ManifestEntry], paths: Sequence[str]) -> list[tuple[str, list[ManifestEntry]]]:
    return [(path, [e for e in entries if is_under(e.path, path)]) for path in paths]


def _parents(entries: Sequence[ManifestEntry], paths: Sequence[str]) -> list[ManifestEntry]:
    return [e for e in entries if not any(is_under(e.path, p) for p in paths)]


def _of(entries: Sequence[ManifestEntry], source: str) -> list[ManifestEntry]:
    return [e for e in entries if e.source == source]


def _wanted(entries: Sequence[ManifestEntry], choices: Sequence[ItemChoice]) -> tuple[ManifestEntry, ...]:
    """The restore point's entries of the chosen items, and of the folders above them."""
    out = []
    for entry in entries:
        for c in choices:
            if c.source == entry.source and (is_under(entry.path, c.path) or is_under(c.path, entry.path)):
                out.append(entry)
                break
    return tuple(out)


async def start(run: ApplyRun) -> None:
    """A new in-place item apply, from PREPARING (nothing changed yet) to the end."""
    t, ctx, record = run.tools, run.ctx, run.journal
    choices = record.items or ()
    names = list(dict.fromkeys(c.source for c in choices))
    point = await t.restore_points.get(record.restore_point_id)
    if point is None:
        raise OperationFailed(OperationErrorCode.NOT_FOUND, f"restore point {record.restore_point_id} no longer exists")
    named = [(c.source, c.path) for c in choices]
    after = _wanted(await t.restore_points.entries_of_items(point.id, named), choices)
    ctx.log(
        f"Putting back {len(choices)} item(s): {', '.join(c.shown for c in choices)}; everything else in "
        f"source(s) {', '.join(repr(n) for n in names)} stays as it is now (each item is renamed in place)."
    )
    staged: dict[str, StagedItems] = {}
    try:
        before = await _capture(run, names, choices)
        await t.steps.reach(ctx, "safety")
        ctx.progress(0.6, "Staging the items")
        for name in names:
            source = find_source(t.sources, name)
            assert isinstance(source, InPlaceSource)
            chosen = _chosen(_of(after, name), _paths(choices, name))
            staged[name] = await asyncio.to_thread(_stage, source, chosen, t.store.open)
        await t.steps.reach(ctx, "verify")
        ctx.forbid_cancel("it has begun putting the items back")
    except asyncio.CancelledError:
        raise
    except BaseException as error:
        for ready in staged.values():
            await asyncio.to_thread(ready.discard)
        await run.discard_preparation()
        if isinstance(error, OperationFailed) and error.code is OperationErrorCode.CONTENT_DAMAGED:
            ctx.log(f"Damaged: {error.message}.", LogLevel.ERROR)
            raise OperationFailed(
                error.code, f"an item of restore point {point.id} is damaged ({error.message}); nothing was changed"
            ) from None
        raise
    await run.advance(ApplyPhase.APPLYING, sources=tuple(names), rollback_entries=tuple(before), after_entries=after)
    await t.steps.reach(ctx, "applying")
    try:
        for name in names:
            await _commit(run, name, staged.pop(name), after)
    except Exception as error:  # not CancelledError: a stopping server rolls forward at start
        for ready in staged.values():
            await asyncio.to_thread(ready.discard)
        await roll_back(run, run.cause(None, error))
    await finish(run)


def _stage(source: InPlaceSource, chosen: list[tuple[str, list[ManifestEntry]]], open_blob: OpenBlob) -> StagedItems:
    return source.stage_paths(chosen, open_blob)


async def _commit(run: ApplyRun, name: str, staged: StagedItems, after: Sequence[ManifestEntry]) -> None:
    paths = _paths(run.journal.items or (), name)
    parents = _parents(_of(after, name), paths)
    for index in range(staged.count):
        await asyncio.to_thread(staged.commit, parents, index)
        await run.tools.steps.reach(run.ctx, "item-renamed")
    run.ctx.log(f"Source {name!r}: {len(paths)} item(s) put back in place.")
    await run.tools.steps.reach(run.ctx, f"applied:{name}")


async def _capture(run: ApplyRun, names: Sequence[str], choices: Sequence[ItemChoice]) -> list[ManifestEntry]:
    """Capture the chosen paths as they are now; kept as the (items-only) safety restore point."""
    t, ctx, record = run.tools, run.ctx, run.journal
    captures = []
    for name in names:
        source = find_source(t.sources, name)
        assert isinstance(source, InPlaceSource)
        items = await asyncio.to_thread(source.capture_paths, _paths(choices, name))
        captures.append((source, items))
    pinned: list[str] = []
    try:
        tally = await t.restore_points.store_items(ctx.section(0.5, 0.6, "Items before"), captures, pinned)
    finally:
        run.pins.extend(pinned)
    if record.keep_safety_restore_point:
        point = await t.restore_points.get(record.restore_point_id)
        await run.save_safety_point(
            tally.entries, tally.stored_bytes, point.label if point else None, tally.manifest_id, items=choices
        )
    else:
        ctx.log("No safety restore point was asked for: the items as they are now are kept internally for a rollback.")
    return list(tally.entries)


async def clear(run: ApplyRun) -> None:
    """Remove what staging left beside the chosen items (nothing was changed)."""
    choices = run.journal.items or ()
    for name in dict.fromkeys(c.source for c in choices):
        source = find_source(run.tools.sources, name)
        if isinstance(source, InPlaceSource):
            await asyncio.to_thread(source.clear_paths, _paths(choices, name))


async def put(run: ApplyRun, entries: Sequence[ManifestEntry]) -> None:
    """Put every chosen item to its state in `entries` (restaged from the store, renamed in)."""
    t, record = run.tools, run.journal
    choices = record.items or ()
    for name in record.sources:
        source = find_source(t.sources, name)
        assert isinstance(source, InPlaceSource)
        paths = _paths(choices, name)
        mine = _of(entries, name)
        await asyncio.to_thread(source.clear_paths, paths)
        staged = await asyncio.to_thread(_stage, source, _chosen(mine, paths), t.store.open)
        for index in range(staged.count):
            await asyncio.to_thread(staged.commit, _parents(mine, paths), index)
        run.ctx.log(f"Source {name!r}: {len(paths)} item(s) put back in place.")


async def roll_forward(run: ApplyRun) -> None:
    try:
        await put(run, run.journal.after_entries)
    except Exception as error:
        await roll_back(run, run.cause(None, error))
    await finish(run)


async def roll_back(run: ApplyRun, cause: OperationError) -> NoReturn:
    ctx = run.ctx
    ctx.log(f"{cause.message[0].upper()}{cause.message[1:]}.", LogLevel.ERROR)
    ctx.log("Rolling back: putting the items back as they were before the apply.", LogLevel.WARNING)
    await run.advance(ApplyPhase.ROLLING_BACK, error=cause)
    await run.tools.steps.reach(ctx, "rollback")
    await restore_before(run, cause)


async def restore_before(run: ApplyRun, cause: OperationError) -> NoReturn:
    try:
        await put(run, run.journal.rollback_entries)
    except Exception as error:
        final = OperationError(
            OperationErrorCode.ROLLBACK_FAILED,
            f"{cause.message}; putting the items back as they were also failed ({type(error).__name__}: {error})"
            + (
                f": apply safety restore point {run.journal.safety_restore_point_id} to go back"
                if run.journal.keep_safety_restore_point
                else ""
            ),
        )
        await run.advance(ApplyPhase.FINISHED, error=final)
        raise OperationFailed(final.code, final.message) from None
    final = OperationError(
        OperationErrorCode.APPLY_FAILED, f"{cause.message}. The items were put back as they were before the apply"
    )
    run.ctx.log("Rolled back: the items are as they were before the apply.", LogLevel.WARNING)
    await run.advance(ApplyPhase.FINISHED, error=final)
    await run.tools.steps.reach(run.ctx, "finish")
    raise OperationFailed(final.code, final.message)


async def finish(run: ApplyRun) -> None:
    """Restart as chosen, read the items back, report what changed among them.

    Only a restart command is recorded in the journal before it runs (it must never run twice);
    without one (the in-process reload, or no restart) a crash from here on finds the journal at
    APPLYING and puts the same items back again, which changes nothing: two journal writes
    (each an fsync) saved."""
    command = run.journal.restart and run.tools.restart.command is not None
    if command and run.journal.phase is not ApplyPhase.RESTARTING:
        await run.advance(ApplyPhase.RESTARTING)
    await run.restart_step(lambda: run.run_restart(only=run.journal.sources, record=command))
    await report(run)


async def report(run: ApplyRun) -> None:
    t, ctx, record = run.tools, run.ctx, run.journal
    ctx.progress(0.95, "Finishing")
    choices = record.items or ()
    matches = True
    for name in record.sources:
        source = find_source(t.sources, name)
        assert isinstance(source, InPlaceSource)
        paths = _paths(choices, name)
        if not await asyncio.to_thread(source.read_back_paths, paths, _of(record.after_entries, name)):
            matches = False

    def inside(entries: Sequence[ManifestEntry]) -> list[ManifestEntry]:
        return [e for e in entries if any(c.source == e.source and is_under(e.path, c.path) for c in choices)]

    summary, changes = compare(inside(record.rollback_entries), inside(record.after_entries), list(record.sources))
    ctx.update_params(changes=summary.as_params())
    ctx.log(
        f"What the apply changed: {summary.added} added, {summary.removed} removed, {summary.changed} changed, "
        f"{summary.unchanged} unchanged (of the items put back; nothing else was touched)."
    )
    for change in changes[:MAX_LOGGED]:
        ctx.log(f"{change.kind.capitalize()}: {change.source}/{change.path}")
    if matches:
        ctx.log(f"Read back: the configuration matches restore point {record.restore_point_id} at the items put back.")
    else:
        ctx.log(
            f"Read back: the items put back differ from restore point {record.restore_point_id} "
            "(something changed them since).",
            LogLevel.WARNING,
        )
    await run.advance(ApplyPhase.FINISHED, error=None)
    await t.steps.reach(ctx, "finish")
    ctx.log(f"Restore point {record.restore_point_id} applied.")
