"""Test-only control of named steps (an apply's, a prune's): pause there, or fail there.

Set by BACKUPS_TEST_PAUSE_AT / BACKUPS_TEST_FAIL_AT, never in production. Tests use a pause
to SIGKILL the server at an exact step, and a failure to exercise the automatic rollback.
"""

from __future__ import annotations

from dataclasses import dataclass

from server.model.errors import OperationErrorCode, OperationFailed
from server.model.records import LogLevel
from server.operations.live import OperationContext

# The steps an apply passes, in order (`applied:<source>` once per source it replaces); and
# `prune-deleted`: a prune has deleted a restore point's record, not yet the blobs only it used;
# `copy-named`: an export or fetch has named its copy, its end is not stored yet;
# `uploading`: a schedule's run has its staging copy and starts an upload to a location.
STEPS = (
    "verify",
    "safety",
    "applying",
    "applied:<source>",
    "rollback",
    "restart",
    "finish",
    "prune-deleted",
    "copy-named",
    "uploading",
)


@dataclass(frozen=True, slots=True)
class StepControl:
    pause_at: str | None = None
    fail_at: str | None = None

    async def reach(self, ctx: OperationContext, step: str) -> None:
        """Called at each named step; does nothing unless a test asked for this step."""
        if step == self.fail_at:
            raise OperationFailed(
                OperationErrorCode.TEST_FAILURE, f"test failure at step {step!r} (BACKUPS_TEST_FAIL_AT)"
            )
        if step == self.pause_at:
            ctx.log(f"Test pause at step {step!r} (BACKUPS_TEST_PAUSE_AT).", LogLevel.WARNING)
            await ctx.flush()
            # Shown only once the line is stored: a test that kills the server on seeing this
            # stage finds every line it saw in the database after the restart.
            ctx.progress(ctx.operation.progress, f"Test pause at {step}")
            await ctx.hold()
