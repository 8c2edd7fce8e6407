"""Verification of restore points and local copies (verifyBackups): starting a run (run.py),
and reading what runs found, for the API, the health and /metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from server.clock import utc_now
from server.model.errors import InvalidInput, NotFound, quoted
from server.model.records import LocalCopy, Operation, OperationKind, RestorePoint
from server.model.verification import Verification, VerificationState, VerificationTotals, VerifiedKind
from server.operations.holds import Hold
from server.operations.live import OperationContext
from server.operations.runner import OperationRunner
from server.services.restore_points import RestorePointService
from server.services.verification.run import Plan, verify
from server.services.verification.tools import Tools
from server.storage.db import verification_repo
from server.storage.locations.store import parse_remote_copy_id

_PAGE = 500


@dataclass(frozen=True, slots=True)
class Unresolved:
    """A restore point or local copy whose last verification found it DAMAGED or MISSING."""

    kind: VerifiedKind
    subject_id: str
    name: str  # how a person knows it (a restore point's label, a copy's file name)
    verification: Verification


class VerificationService:
    def __init__(self, *, tools: Tools, runner: OperationRunner, restore_points: RestorePointService) -> None:
        self._tools = tools
        self._runner = runner
        self._restore_points = restore_points
        self._one_at_a_time = asyncio.Lock()

    async def start(
        self,
        *,
        restore_point_ids: Sequence[str] | None,
        copies: bool,
        read_percent: int,
        requested_by: str | None,
        outdated_after_days: int = 0,
        notes: Sequence[str] = (),
        params: dict[str, object] | None = None,
    ) -> Operation:
        """Start verifying these restore points (None: every one); NOT_FOUND for an id that
        names none, INVALID_INPUT for a share outside 1..100; nothing starts on either.

        It runs in the background (the runner's `background`): one at a time (a second waits
        for the first), paused while a restore point is created, stopped for an apply.
        `outdated_after_days` > 0: a restore point verified OK within that many days is skipped
        (a schedule's runs); `notes` open its log."""
        if not 1 <= read_percent <= 100:
            raise InvalidInput(f"readPercent must be from 1 to 100, not {read_percent}", field="readPercent")
        holds: list[Hold] = []
        try:
            points = await self._hold_points(restore_point_ids, holds)
        except BaseException:
            for hold in holds:
                hold.release()
            raise

        async def job(ctx: OperationContext) -> None:
            # Read in the job, not before it starts (many restore points, many entries); the
            # holds keep every one of them meanwhile.
            for note in notes:
                ctx.log(note)
            await self._take_turn(ctx)  # a second run waits for the first (they share the totals and cursor)
            try:
                chosen = await self._outdated(ctx, points, outdated_after_days)
                entries = {
                    point.id: await self._restore_points.entries_in_parts(point.id, ctx.between_parts)
                    for point in chosen
                }
                plan = Plan(points=chosen, entries=entries, copies=copies, percent=read_percent)
                await verify(ctx, self._tools, plan)
            finally:
                self._one_at_a_time.release()

        given = {"restorePointIds": [point.id for point in points], "copies": copies, "readPercent": read_percent}
        if outdated_after_days:
            given["outdatedAfterDays"] = outdated_after_days
        return await self._runner.submit(
            OperationKind.VERIFY_BACKUPS,
            job,
            requested_by=requested_by,
            params=given | (params or {}),
            holds=holds,
            background=True,
        )

    async def _take_turn(self, ctx: OperationContext) -> None:
        """Wait for the run before this one to end; a cancel (or an apply) ends the wait at once."""
        if self._one_at_a_time.locked():
            ctx.log("Waiting for the verification under way to end (one runs at a time).")
        turn = asyncio.ensure_future(self._one_at_a_time.acquire())
        stop = asyncio.ensure_future(ctx.hold())
        await asyncio.wait({turn, stop}, return_when=asyncio.FIRST_COMPLETED)
        if turn.done() and not stop.done():
            stop.cancel()
            return
        if turn.done():
            self._one_at_a_time.release()
        else:
            turn.cancel()
        await stop  # raises OperationCancelled

    async def _outdated(self, ctx: OperationContext, points: list[RestorePoint], days: int) -> list[RestorePoint]:
        """The restore points to read: all but those verified OK within `days` (0: all)."""
        if days <= 0:
            return points
        since = utc_now(self._tools.clock) - timedelta(days=days)
        earlier = await self.of(VerifiedKind.RESTORE_POINT, [point.id for point in points])
        chosen = [
            point
            for point in points
            if (found := earlier.get(point.id)) is None
            or found.state is not VerificationState.OK
            or found.verified_at < since
        ]
        ctx.log(
            f"Skipped {len(points) - len(chosen)} restore point(s) verified within {days} day(s); "
            f"{len(chosen)} to verify (never verified, verified earlier, or not OK when last verified)."
        )
        ctx.update_params(skipped=len(points) - len(chosen))
        return chosen

    async def _hold_points(self, ids: Sequence[str] | None, holds: list[Hold]) -> list[RestorePoint]:
        """Hold each restore point, then check it exists (a delete under way is waited for)."""
        named = list(dict.fromkeys(ids)) if ids is not None else await self._all_point_ids()
        for point_id in named:
            holds.append(await self._restore_points.hold_only(point_id))
        found = await self._restore_points.get_many(named)
        if ids is not None:
            unknown = [point_id for point_id in named if point_id not in found]
            if unknown:
                raise NotFound(
                    f"no restore point with id {', '.join(quoted(i) for i in unknown)}; nothing was started",
                    field="restorePointIds",
                )
        return [found[point_id] for point_id in named if point_id in found]

    async def _all_point_ids(self) -> list[str]:
        ids: list[str] = []
        after: str | None = None
        while True:
            page = await self._restore_points.page(first=_PAGE, after=after)
            ids.extend(point.id for point in page.items)
            if not page.has_next_page:
                return ids
            after = page.end_cursor

    # -- reading ------------------------------------------------------------------------------

    async def of(self, kind: VerifiedKind, ids: Sequence[str]) -> dict[str, Verification]:
        """The stored verifications of these subjects (those never verified are absent)."""
        async with self._tools.db.read() as session:
            return await verification_repo.get_many(session, kind, ids)

    async def forget(self, kind: VerifiedKind, subject_id: str) -> None:
        """A copy deleted on purpose: its verification goes with it (it is not MISSING)."""
        async with self._tools.db.write() as session:
            await verification_repo.forget(session, kind, [subject_id])

    async def forget_remote(self, remote_copy_id: str) -> None:
        await self.forget(VerifiedKind.REMOTE_COPY, remote_copy_id)

    async def totals(self) -> VerificationTotals:
        async with self._tools.db.read() as session:
            return await verification_repo.totals(session)

    async def unresolved(self) -> list[Unresolved]:
        """Every restore point and local copy, still there, whose last verification is not OK."""
        async with self._tools.db.read() as session:
            rows = await verification_repo.not_ok(session)
        point_ids = [subject for kind, subject, _ in rows if kind is VerifiedKind.RESTORE_POINT]
        points = await self._restore_points.get_many(point_ids)
        copies: dict[str, LocalCopy] = {}
        if any(kind is VerifiedKind.LOCAL_COPY for kind, _, _ in rows):
            copies = {copy.id: copy for copy in await asyncio.to_thread(self._tools.folder.list)}
        found: list[Unresolved] = []
        for kind, subject, verification in rows:
            if kind is VerifiedKind.REMOTE_COPY:
                parsed = parse_remote_copy_id(subject)
                if parsed is not None and parsed[0] in self._tools.locations:  # a location still configured
                    found.append(Unresolved(kind, subject, f"{parsed[1]} at {parsed[0]!r}", verification))
                continue
            if kind is VerifiedKind.RESTORE_POINT and (point := points.get(subject)) is not None:
                found.append(Unresolved(kind, subject, point.label, verification))
            elif kind is VerifiedKind.LOCAL_COPY and (copy := copies.get(subject)) is not None:
                found.append(Unresolved(kind, subject, copy.file_name, verification))
        return found
