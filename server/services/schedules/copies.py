"""A schedule's copies to locations (copyToLocations), made inside the run that made the
restore point, so one operation's progress and log tell the whole story.

Semantics (docs/configuration/schedules.md and locations.md):
- After the restore point is recorded, it is exported once to a staging copy (in the local
  copies folder's `.staging` subfolder: never listed as a local copy, and emptied at start-up
  when a killed run left one), uploaded to each named location in turn, and the staging copy
  is removed again, whether the uploads worked or not.
- A failed export or upload does not fail the run: the restore point stays, the log names the
  location and why (a WARNING line), and the run's `copiesFailed` parameter makes the backup
  health WARNING until a later run of the schedule copies there again.
- After an upload, the location's `keepLast` (config file) deletes the oldest copies this
  schedule of this server put there, beyond that number. The copy just uploaded (the newest
  verified one) is always kept; copies another server put there, copies uploaded by hand and
  copies of other schedules are never touched.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime

from server.clock import Clock, utc_now
from server.model.errors import DomainError, InvalidInput, NotFound, OperationFailed, quoted
from server.model.names import each_once
from server.model.records import LocalCopy, LogLevel, RestorePoint, Schedule
from server.operations.live import OperationContext
from server.services.local_copies.service import LocalCopyService
from server.services.locations.service import LocationService
from server.storage.db import scheduled_copies_repo as repo
from server.storage.db.database import Database
from server.storage.db.scheduled_copies_repo import ScheduledCopy
from server.test_seams import StepControl

LOCAL = "local"
FIELD = "copyToLocations"


def check_copy_targets(names: Sequence[str], configured: Collection[str]) -> tuple[str, ...]:
    """The names if each is a configured location, named once; INVALID_INPUT naming the first bad one."""
    for name in names:
        if name == LOCAL:
            raise InvalidInput(
                "'local' (the local copies folder) is not a place to copy to: a schedule's restore points are "
                "on this machine already; name locations declared in the config file",
                field=FIELD,
            )
        if name not in configured:
            known = ", ".join(repr(n) for n in configured) or "none"
            raise InvalidInput(f"no location {quoted(name)} is configured (configured locations: {known})", field=FIELD)
    return each_once(names, what="location", field=FIELD)


class ScheduledCopies:
    """Export a run's restore point, upload it to the schedule's locations, apply their keepLast."""

    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        local_copies: LocalCopyService,
        locations: LocationService,
        keep_last: Mapping[str, int],
        steps: StepControl | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._local = local_copies
        self._locations = locations
        self._keep_last = dict(keep_last)
        self._steps = steps or StepControl()

    async def copy(self, ctx: OperationContext, point: RestorePoint, schedule: Schedule) -> None:
        """Copy `point` to every location of `schedule`; failures are logged and recorded, never raised."""
        targets = schedule.copy_to_locations
        ctx.log(f"Copying restore point {point.id} to {len(targets)} locations: {', '.join(targets)}.")
        made: dict[str, str] = {}
        failed: dict[str, str] = {}
        try:
            staging = await self._local.export_staging(ctx.section(0.0, 0.3, "Exporting"), point)
        except (OperationFailed, DomainError) as error:
            reason = f"the copy to upload could not be written: {error.message}"
            ctx.log(f"No location gets a copy of this run: {reason}.", LogLevel.WARNING)
            failed = dict.fromkeys(targets, reason)
        else:
            try:
                for number, name in enumerate(targets):
                    span = ctx.section(0.3 + 0.7 * number / len(targets), 0.3 + 0.7 * (number + 1) / len(targets))
                    problem = await self._copy_to(span, point, schedule, staging, name, made)
                    if problem is not None:
                        failed[name] = problem
            finally:
                await self._remove_staging(ctx, staging)
        ctx.update_params(copiesMade=made, copiesFailed=failed)
        summary = f"Copied to {len(made)} of {len(targets)} locations"
        if failed:
            ctx.log(f"{summary}; problems at: {', '.join(failed)} (the restore point is kept).", LogLevel.WARNING)
        else:
            ctx.log(f"{summary}.")

    async def _copy_to(
        self,
        ctx: OperationContext,
        point: RestorePoint,
        schedule: Schedule,
        staging: LocalCopy,
        location: str,
        made: dict[str, str],
    ) -> str | None:
        """Upload to one location, then prune there; why it failed, or None."""
        sub = ctx.section(0.0, 0.9, f"Uploading to {location!r}")
        await self._steps.reach(sub, "uploading")  # a test may kill the server here
        try:
            file_name = await self._locations.upload_within(sub, staging, location)
        except (OperationFailed, DomainError) as error:
            ctx.log(f"Upload to location {location!r} failed: {error.message}.", LogLevel.WARNING)
            return error.message
        made[location] = file_name
        uploaded = ScheduledCopy(location, file_name, schedule.id, point.id, self._now())
        async with self._db.write() as session:
            await repo.record(session, uploaded)
        ctx.log(f"Uploaded to location {location!r} as {file_name}.")
        return await self._prune(ctx, schedule, location, newest=file_name)

    async def _prune(self, ctx: OperationContext, schedule: Schedule, location: str, *, newest: str) -> str | None:
        """Apply the location's keepLast to this schedule's copies there; why it could not, or None."""
        keep = self._keep_last.get(location)
        if keep is None:
            return None
        state = await self._locations.get(location)
        if state is None or not state.reachable:
            problem = state.problem if state else f"location {location!r} is no longer configured"
            ctx.log(f"keepLast at location {location!r} not applied: {problem}.", LogLevel.WARNING)
            return f"keepLast could not be applied: {problem}"
        listed = {copy.file_name: copy for copy in await self._locations.details(list(state.copies))}
        async with self._db.read() as session:
            recorded = await repo.of_schedule(session, schedule.id, location)
        present = []
        for mine in recorded:
            copy = listed.get(mine.file_name)
            if copy is None or copy.restore_point_id != mine.restore_point_id:
                await self._forget(mine)  # deleted there by other means, or replaced: not ours any more
                continue
            present.append((mine, copy))
        # Newest first by our own upload time; the copy just uploaded and read back is kept whatever the clock did.
        present.sort(key=lambda pair: pair[0].file_name != newest)
        for mine, copy in present[keep:]:
            try:
                await self._locations.delete(copy.id)
            except NotFound:
                pass
            except DomainError as error:
                ctx.log(
                    f"Could not delete {mine.file_name} at location {location!r}: {error.message}.", LogLevel.WARNING
                )
                return f"keepLast could not be applied: {error.message}"
            await self._forget(mine)
            ctx.log(
                f"Deleted {mine.file_name} at location {location!r} (restore point {mine.restore_point_id}, "
                f"uploaded {mine.uploaded_at:%Y-%m-%d %H:%M:%S} UTC): beyond keepLast={keep} of this schedule's copies there."
            )
        ctx.log(
            f"Location {location!r} keeps {min(keep, len(present))} of this schedule's copies (keepLast={keep}); "
            "copies uploaded by hand or by another server are left alone."
        )
        return None

    async def _forget(self, copy: ScheduledCopy) -> None:
        async with self._db.write() as session:
            await repo.forget(session, copy.location, copy.file_name)

    async def _remove_staging(self, ctx: OperationContext, staging: LocalCopy) -> None:
        try:
            await self._local.remove_staging(staging)
        except OSError as error:  # start-up removes it then
            ctx.log(f"The staging copy {staging.file_name} could not be removed: {error}.", LogLevel.WARNING)
            return
        ctx.log("The staging copy was removed.")

    def _now(self) -> datetime:
        return utc_now(self._clock)
