"""One verifyBackups operation, step by step: read each blob the restore points use (once, however
many share it), check the manifests, read the local copies whole, repair what a good copy
holds, then store what was found."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from server.clock import utc_now
from server.model.errors import NotFound
from server.model.manifests import manifest_checksum
from server.model.records import LocalCopy, LogLevel, ManifestEntry, RestorePoint
from server.model.verification import (
    Verification,
    VerificationState,
    VerifiedKind,
    rotation_window,
    worst,
)
from server.operations.live import OperationCancelled, OperationContext
from server.services.local_copies.delete import hold_copy
from server.services.verification.copies import CopyFinding, VerifyStopped, verify_copy
from server.services.verification.remote import verify_remote
from server.services.verification.repair import repair
from server.services.verification.tools import Tools
from server.storage.blobs.checks import BlobCheck, CheckStopped, check_blob, pack_header_problem
from server.storage.db import verification_repo


@dataclass
class Plan:
    points: list[RestorePoint]
    entries: dict[str, list[ManifestEntry]]  # by restore point id
    copies: bool
    percent: int
    sizes: dict[str, int] = field(default_factory=dict)  # every blob the points use -> its size


async def verify(ctx: OperationContext, tools: Tools, plan: Plan) -> None:
    """The job of a VERIFY_BACKUPS operation."""
    for entries in plan.entries.values():
        for entry in entries:
            if entry.sha256 is not None:
                plan.sizes[entry.sha256] = entry.size
    async with tools.db.read() as session:
        totals = await verification_repo.totals(session)
        earlier = await verification_repo.get_many(session, VerifiedKind.RESTORE_POINT, [p.id for p in plan.points])
    await ctx.between_parts()
    chosen, cursor = rotation_window(sorted(plan.sizes), plan.percent, totals.cursor)
    # A restore point found wrong before is read whole until it is OK again.
    for point in plan.points:
        if (found := earlier.get(point.id)) is not None and found.state is not VerificationState.OK:
            chosen.extend(e.sha256 for e in plan.entries[point.id] if e.sha256 is not None)
    wanted = sorted(set(chosen))
    share = "every blob" if plan.percent >= 100 else f"{plan.percent}% of the blobs (a rotation over runs)"
    ctx.log(
        f"Verifying {len(plan.points)} restore point(s): {share}, {len(wanted)} of {len(plan.sizes)} distinct "
        f"blob(s), {sum(plan.sizes[d] for d in wanted)} bytes"
        + (", then every local and remote copy." if plan.copies else ".")
    )
    await tools.steps.reach(ctx, "verify-read")
    checks = await _read_blobs(ctx.section(0.0, 0.6 if plan.copies else 0.9), tools, wanted, plan.sizes)
    bytes_read = sum(check.bytes_read for check in checks.values())

    copies: list[LocalCopy] = await asyncio.to_thread(tools.folder.list)
    if plan.copies:
        bytes_read += await _verify_copies(ctx.section(0.6, 0.75), tools, copies)
        bytes_read += await verify_remote(
            ctx.section(0.75, 0.9),
            db=tools.db,
            locations=tools.locations,
            folder=tools.folder,
            encryption=tools.encryption,
            clock=tools.clock,
        )

    bad = {digest: check for digest, check in checks.items() if not check.ok}
    repaired = await repair(ctx, tools, copies, bad) if bad else {}
    ctx.progress(0.95, "Storing the results")
    now = utc_now(tools.clock)
    damaged = 0
    async with tools.db.write() as session:
        for point in plan.points:
            found = _point_verification(point, plan.entries[point.id], checks, repaired, now)
            damaged += found.state is not VerificationState.OK
            await verification_repo.save(session, VerifiedKind.RESTORE_POINT, point.id, found)
        await verification_repo.add_run(
            session, finished_at=now, bytes_read=bytes_read, repaired=len(repaired), cursor=cursor
        )
    ctx.update_params(damaged=damaged, repaired=len(repaired), bytesRead=bytes_read)
    level = LogLevel.WARNING if damaged else LogLevel.INFO
    ctx.log(
        f"Verified {len(plan.points)} restore point(s), {bytes_read} bytes read: {damaged} damaged or missing, "
        f"{len(repaired)} blob(s) repaired.",
        level,
    )


async def _read_blobs(
    ctx: OperationContext, tools: Tools, wanted: Sequence[str], sizes: dict[str, int]
) -> dict[str, BlobCheck]:
    delay = ctx.entry_delay  # the test-only per-item delay: a slow verification to watch

    def work(on_bytes: Callable[[int], None], should_stop: Callable[[], bool]) -> dict[str, BlobCheck]:
        found: dict[str, BlobCheck] = {}
        for digest in wanted:
            if should_stop():
                raise CheckStopped(digest)
            found[digest] = check_blob(tools.store, digest, on_bytes, should_stop)
            if delay:
                time.sleep(delay)
        return found

    try:
        checks = await ctx.run_blocking(
            work, total=sum(sizes[d] for d in wanted), start=0.0, end=1.0, stage="Reading blobs"
        )
    except CheckStopped:
        ctx.checkpoint()
        raise
    for check in checks.values():
        if not check.ok:
            what = "missing" if check.missing else "damaged"
            ctx.log(f"Blob {check.digest} is {what}: {check.detail}.", LogLevel.WARNING)
    packs = {where.pack for d in wanted if (where := tools.store.packs.index.get(d)) is not None}
    for pack in sorted(packs):
        if (problem := await asyncio.to_thread(pack_header_problem, tools.store, pack)) is not None:
            # The server never reads a pack's header back (each blob is read by its range and
            # checked): the blobs above say whether the content is intact.
            ctx.log(f"{problem} (the blobs in it are checked one by one above).", LogLevel.WARNING)
    return checks


async def _verify_copies(ctx: OperationContext, tools: Tools, copies: list[LocalCopy]) -> int:
    """Read every local copy whole and store what each one is; returns the bytes read."""
    total = sum(copy.size for copy in copies) or 1
    done = 0
    for copy in copies:
        ctx.checkpoint()
        part = ctx.section(done / total, (done + copy.size) / total)

        def work(
            on_bytes: Callable[[int], None], should_stop: Callable[[], bool], copy: LocalCopy = copy
        ) -> CopyFinding:
            return verify_copy(copy, tools.folder, tools.encryption, on_bytes, should_stop)

        try:  # held while it is read: a delete meanwhile gets BUSY, or won first (skipped)
            _, hold = await hold_copy(tools.folder, tools.holds, copy.id)
        except NotFound:
            continue
        try:
            finding = await part.run_blocking(
                work, total=copy.size, start=0.0, end=1.0, stage=f"Reading local copy {copy.file_name}"
            )
        except VerifyStopped:
            ctx.checkpoint()
            raise OperationCancelled("cancel") from None
        finally:
            hold.release()
        done += copy.size
        if finding.state is None:
            ctx.log(f"Local copy {copy.file_name} was not verified: {finding.note}.", LogLevel.WARNING)
            continue
        state, problems = finding.state, finding.problems
        if state is VerificationState.OK:
            ctx.log(f"Local copy {copy.file_name}: OK.")
        else:
            ctx.log(
                f"Local copy {copy.file_name} is {state.value}: {'; '.join(problems)}. It is not repaired in "
                "place: export its restore point again for a good copy, then delete this one.",
                LogLevel.WARNING,
            )
        async with tools.db.write() as session:
            found = Verification(state, utc_now(tools.clock), problems, 0)
            await verification_repo.save(session, VerifiedKind.LOCAL_COPY, copy.id, found)
    return done


def _point_verification(
    point: RestorePoint,
    entries: list[ManifestEntry],
    checks: dict[str, BlobCheck],
    repaired: dict[str, str],
    now: datetime,
) -> Verification:
    states: list[VerificationState] = []
    problems: list[str] = []
    if manifest_checksum(entries) != point.checksum:
        states.append(VerificationState.DAMAGED)
        problems.append("the manifest's checksum does not match its entries")
    for entry in entries:
        check = checks.get(entry.sha256) if entry.sha256 is not None else None
        if check is None or check.ok or entry.sha256 in repaired:
            continue
        state = VerificationState.MISSING if check.missing else VerificationState.DAMAGED
        states.append(state)
        problems.append(f"{entry.source}/{entry.path}: {state.value.lower()} ({check.detail})")
    put_back = {entry.sha256 for entry in entries if entry.sha256 in repaired}
    return Verification(worst(states), now, tuple(problems), len(put_back))
