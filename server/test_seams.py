"""Test seams: hooks the tests use to make the server slow, pause it or fail it at a named
step. TEST-ONLY: never set any of them in production; none is part of the server's config.

Read once at start-up from the BACKUPS_TEST_* environment variables (`load_test_seams`, by
`backups serve`; a test server in the test's own process builds `TestSeams(...)` itself), then
handed by the composition root (server/backend.py) to what needs each value:

- BACKUPS_TEST_ENTRY_DELAY: seconds an operation sleeps after each item it handles (and logs a
  line saying so), so tests can watch and cancel it mid-run; an upload to a location sleeps
  after each part or chunk.
- BACKUPS_TEST_PAUSE_AT / BACKUPS_TEST_FAIL_AT: an operation waits at this named step (until
  the process is killed), or fails there with TEST_FAILURE (to exercise a rollback). The steps
  are `STEPS` below; `StepControl` is what the services call at each.
- BACKUPS_TEST_PACK_PAUSE_AFTER_APPENDS: the appending thread stops (until the process is
  killed) once a pack holds this many blobs: a pack torn mid-write.
- BACKUPS_TEST_PACK_REWRITE_PAUSE_SECONDS: a pack's rewrite waits this long with the new pack
  written, before its rows move.
- BACKUPS_TEST_FINAL_WRITE_DELAY: seconds an operation waits, its final state already shown to
  readers, before that state is stored (what a slow disk or a busy database does).

`OperationErrorCode.TEST_FAILURE` stays in the GraphQL schema (it is part of the contract),
marked deprecated: only this seam sends it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from server.config.environment import one_line_error
from server.model.errors import OperationErrorCode, OperationFailed
from server.model.records import LogLevel
from server.operations.live import OperationContext

# The steps an apply passes, in order (`applied:<source>` once per source it replaces;
# `item-renamed` after each item an item apply in place renamed over its target); and
# `prune-deleted`: a prune has deleted a restore point's record, not yet the blobs only it used;
# `copy-named`: an export or fetch has named its copy, its end is not stored yet;
# `uploading`: a schedule's run has its staging copy and starts an upload to a location.
STEPS = (
    "verify",
    "safety",
    "applying",
    "item-renamed",
    "applied:<source>",
    "rollback",
    "restart",
    "finish",
    "prune-deleted",
    "copy-named",
    "uploading",
    "verify-read",
    "verify-repair",
)


@dataclass(frozen=True, slots=True)
class StepControl:
    """Pause or fail at a named step (BACKUPS_TEST_PAUSE_AT / BACKUPS_TEST_FAIL_AT)."""

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


class TestSeams(BaseSettings):
    """The test seams in force: all off by default (`TestSeams.off()`), as in production."""

    __test__: ClassVar[bool] = False  # not a test class, despite its name
    model_config = SettingsConfigDict(env_prefix="BACKUPS_TEST_", extra="ignore", frozen=True)

    entry_delay: float = Field(default=0.0, ge=0)
    pause_at: str | None = None
    fail_at: str | None = None
    pack_pause_after_appends: int | None = Field(default=None, ge=1)
    pack_rewrite_pause_seconds: float = Field(default=0.0, ge=0)
    final_write_delay: float = Field(default=0.0, ge=0)

    @classmethod
    def off(cls) -> TestSeams:
        """No seam set, whatever the environment holds."""
        return cls.model_construct()

    @property
    def steps(self) -> StepControl:
        return StepControl(pause_at=self.pause_at, fail_at=self.fail_at)


# What each seam accepts, for the one line a bad value gets at start-up.
ACCEPTS = {
    "entry_delay": "a number of seconds, 0 or more",
    "pause_at": "a step name (server/test_seams.py)",
    "fail_at": "a step name (server/test_seams.py)",
    "pack_pause_after_appends": "a whole number, at least 1",
    "pack_rewrite_pause_seconds": "a number of seconds, 0 or more",
    "final_write_delay": "a number of seconds, 0 or more",
}


def load_test_seams() -> TestSeams:
    """The seams from the BACKUPS_TEST_* environment variables; SettingsError if one is bad."""
    try:
        return TestSeams()
    except ValidationError as error:
        raise one_line_error(error, env_prefix="BACKUPS_TEST_", accepts=ACCEPTS) from None
