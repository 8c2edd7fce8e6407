"""Staging: before an apply changes anything, sources that can build their new state aside
(a directory source builds the new tree beside the folder) do so now.

This is also where their content is verified: each blob is hashed as it is copied into the
staged state, so it is read once instead of twice (a separate verification pass used to
read the whole restore point first). A damaged blob fails the apply here, while nothing
has changed, with the same CONTENT_DAMAGED error the verification pass gives.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from server.model.errors import OperationErrorCode, OperationFailed
from server.model.records import LogLevel, ManifestEntry
from server.operations.live import OperationContext
from server.services.apply.plan import ApplyPlan
from server.sources.base import StagedApply, StagingSource, StagingStopped
from server.storage.blobs.content_store import ContentStore

PROGRESS_INTERVAL = 0.2
log = logging.getLogger(__name__)


def checked_when_staged(plan: ApplyPlan) -> set[str]:
    """The blobs that staging hashes as it copies them (the verification pass skips them)."""
    return {
        entry.sha256
        for source, entries in plan.steps
        if isinstance(source, StagingSource)
        for entry in entries
        if entry.sha256 is not None
    }


async def stage_sources(ctx: OperationContext, plan: ApplyPlan, store: ContentStore) -> dict[str, StagedApply]:
    """Stage every source that can be staged; on any failure, nothing staged is left."""
    staging = [(source, entries) for source, entries in plan.steps if isinstance(source, StagingSource)]
    total = sum(entry.size for _, entries in staging for entry in entries) or 1
    staged: dict[str, StagedApply] = {}
    done = 0
    try:
        for source, entries in staging:
            ctx.log(f"Staging source {source.name!r}: writing {len(entries)} items beside it, checking each.")
            ctx.progress(done / total, f"Staging {source.name}")
            section = ctx.section(done / total, (done + sum(e.size for e in entries)) / total)
            ready = staged[source.name] = await _stage_one(section, plan, source, entries, store)
            if ready.kept:
                ctx.log(
                    f"Source {source.name!r}: {ready.kept} files were already as the restore point has "
                    "them and are kept as they are; the rest was written from the store."
                )
            done += sum(e.size for e in entries)
    except BaseException:
        await discard_staged(staged)
        raise
    return staged


async def discard_staged(staged: Mapping[str, StagedApply]) -> None:
    """Throw away staged states that will not be committed. A failure here is only logged:
    the error that brought us here is the one to report, and the next apply of the source
    removes what is left."""
    for name, ready in staged.items():
        try:
            await ready.discard()
        except Exception:
            log.exception("could not remove the staged state of source %s", name)


async def _stage_one(
    ctx: OperationContext,
    plan: ApplyPlan,
    source: StagingSource,
    entries: list[ManifestEntry],
    store: ContentStore,
) -> StagedApply:
    total = sum(entry.size for entry in entries) or 1
    done = 0
    stopping = False

    def on_bytes(count: int) -> None:
        nonlocal done
        done += count

    def should_stop() -> bool:
        return stopping or ctx.cancel_requested

    work = asyncio.to_thread(source.stage, entries, store.open, on_bytes=on_bytes, should_stop=should_stop)
    task = asyncio.ensure_future(work)
    task.add_done_callback(lambda t: t.cancelled() or t.exception())  # seen even if abandoned
    try:
        while not task.done():
            await asyncio.wait({task}, timeout=PROGRESS_INTERVAL)
            ctx.progress(min(1.0, done / total))
    except asyncio.CancelledError:
        stopping = True  # the server is stopping: the thread stops at its next file and tidies up
        raise
    try:
        return task.result()
    except StagingStopped:
        ctx.checkpoint()  # raises OperationCancelled: a cancel was asked for
        raise
    except OperationFailed as failure:
        if failure.code is OperationErrorCode.CONTENT_DAMAGED:
            ctx.log(f"Damaged: {failure.message}.", LogLevel.ERROR)
            raise OperationFailed(
                OperationErrorCode.CONTENT_DAMAGED,
                f"an item of restore point {plan.point.id} is damaged ({failure.message}); nothing was changed",
            ) from None
        raise OperationFailed(failure.code, f"{failure.message}; nothing was changed") from None
