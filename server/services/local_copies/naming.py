"""Naming a finished local copy so that an operation's status and the disk agree after a crash.

An export or a fetch writes its copy under a hidden temporary name and checks it; naming it
(a hard link) and storing the operation's end are two steps, and a SIGKILL may fall between
them. So the operation first stores what it is about to name (the temporary file's inode,
size and intended name, in its params), refuses cancels from then on, and only then names
it. A start-up that finds the operation unfinished and a file with that inode under that name
(or a `-N` variant) finishes it SUCCEEDED with that copy, which is complete: only a checked
file is named. Finding none, it ends INTERRUPTED, and the temporary file was removed as a
leftover. (docs/local-copies.md: chosen over leaving the copy unnamed until the end is
stored, which would need the runner to name files.) When the database cannot be written at
that moment (a full disk), the copy is named anyway and its end stored once there is room.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from server.model.records import LogLevel, Operation, OperationKind
from server.operations.live import OperationContext
from server.operations.runner import OperationRunner
from server.storage.local_copy.folder import LocalCopyFolder, copy_id
from server.test_seams import StepControl

NAMING = "naming"  # the operation's param that holds what it is about to name
NAMED_STEP = "copy-named"  # a test may pause here: named, its end not yet stored
KINDS = (OperationKind.EXPORT_RESTORE_POINT, OperationKind.FETCH_FROM_LOCATION)
NO_CANCEL = "its copy is complete and is being given its name"

BeforeNaming = Callable[[Path, str], None]

log = logging.getLogger(__name__)


class CopyNaming:
    """Records a copy's name before it is given, and finishes such operations at start-up."""

    def __init__(self, *, folder: LocalCopyFolder, runner: OperationRunner, steps: StepControl) -> None:
        self._folder = folder
        self._runner = runner
        self._steps = steps
        for kind in KINDS:
            runner.on_leftover(kind, self._recover)

    def recorder(self, ctx: OperationContext) -> BeforeNaming:
        """For the thread that names the copy (LocalCopyFolder.place's `before_naming`):
        stores the intent with the operation, durably, before returning."""
        loop = asyncio.get_running_loop()

        def record(temp: Path, name: str) -> None:
            info = os.stat(temp)
            intent = {"fileName": name, "inode": info.st_ino, "size": info.st_size}
            asyncio.run_coroutine_threadsafe(self._store(ctx, intent), loop).result()

        return record

    async def _store(self, ctx: OperationContext, intent: dict[str, Any]) -> None:
        # A cancel that came first wins (nothing is named); from here on the copy gets its name.
        ctx.forbid_cancel(NO_CANCEL)
        ctx.update_params(**{NAMING: intent})
        try:
            await ctx.flush()
        except Exception as error:
            # The database cannot be written (a full disk under it): the copy is named all
            # the same, as its end will be stored once there is room; only a crash before
            # then can leave it named with the operation INTERRUPTED.
            log.warning("operation %s names its copy before its intent could be stored: %s", ctx.operation.id, error)

    async def named(self, ctx: OperationContext) -> None:
        """Called once the copy has its name, before the operation ends (a test-only pause point)."""
        await self._steps.reach(ctx, NAMED_STEP)

    async def _recover(self, op: Operation) -> bool:
        intent = op.params.get(NAMING)
        if not isinstance(intent, dict):
            return False
        try:
            found = await asyncio.to_thread(
                self._folder.find_placed, str(intent["fileName"]), int(intent["inode"]), int(intent["size"])
            )
        except (KeyError, TypeError, ValueError, OSError):
            return False
        if found is None:
            return False

        async def job(ctx: OperationContext) -> None:
            ctx.set_subject(local_copy_id=copy_id(found))
            ctx.log(
                f"The server stopped after naming local copy {found}, before storing this operation's end: "
                "the copy is complete (it was checked before it was named), so the operation is finished now.",
                LogLevel.WARNING,
            )

        self._runner.resume(op, job)
        return True
