"""Finishing an apply that a stopped process left, from its journal (see service.py for what
each phase means after a restart)."""

from __future__ import annotations

from server.model.errors import OperationErrorCode, OperationFailed
from server.model.records import LogLevel, OperationError
from server.operations.live import OperationContext
from server.services.apply import in_place
from server.services.apply.plan import ApplyPlan
from server.services.apply.run import BEFORE_CHANGES, NO_CANCEL, NO_RESTART, ApplyRun
from server.services.system import SystemState
from server.storage.apply_journal import ApplyPhase


async def resume_run(run: ApplyRun, ctx: OperationContext) -> None:
    """Finish an apply the previous process left: fail it if nothing had changed yet,
    else roll forward (or finish the rollback) from its journal."""
    run.attach(ctx)
    record = run.record
    if record is None or record.phase is ApplyPhase.PREPARING:
        ctx.log("Resumed after a restart: the server stopped before the apply changed anything.", LogLevel.WARNING)
        if record is not None:
            await run.discard_preparation()
        raise OperationFailed(
            BEFORE_CHANGES, "the server stopped before the apply changed anything; the configuration is as it was"
        )
    ctx.forbid_cancel(NO_CANCEL)
    if record.keep_safety_restore_point:
        ctx.hold_restore_point(record.safety_restore_point_id)  # the way back stays while it runs
    if record.in_place:
        await _resume_in_place(run)
    elif record.phase is ApplyPhase.APPLYING:
        ctx.log(
            "Resumed after a restart: the server stopped while sources were being replaced; "
            "applying every source again (rolling forward).",
            LogLevel.WARNING,
        )
        try:
            plan = await run.load_plan()
        except Exception as error:
            await run.roll_back(run.cause(None, error))
        await run.apply(plan)
    elif record.phase is ApplyPhase.ROLLING_BACK:
        ctx.log("Resumed after a restart: finishing the rollback.", LogLevel.WARNING)
        await run.restore_before(record.error or OperationError(OperationErrorCode.APPLY_FAILED, "applying failed"))
    elif record.phase is ApplyPhase.RESTARTING:
        await _resume_restart(run)
    else:
        ctx.log("Resumed after a restart: the apply had already finished.")
        if record.error is not None:
            raise OperationFailed(record.error.code, record.error.message)


async def _resume_restart(run: ApplyRun) -> None:
    ctx = run.ctx
    if run.journal.restart:
        run.tools.system.enter(SystemState.RESTARTING, run.journal.operation_id)
    try:
        plan: ApplyPlan | None = await run.load_plan()
    except Exception:
        plan = None
    if not run.journal.restart:
        ctx.log("Resumed after a restart: every source had been applied; no restart: " + NO_RESTART)
    elif not run.journal.restart_started:
        ctx.log("Resumed after a restart: every source had been applied; restarting now.")
        await run.run_restart()
    elif run.tools.restart.command is None:
        ctx.log("Resumed after a restart: every source had been applied, and this start reloaded them.")
    else:
        ctx.log(
            "Resumed after a restart: the server stopped while the restart command ran (as it does "
            "when the command restarts this server). Every source had been applied; the command "
            "is not run again.",
            LogLevel.WARNING,
        )
    await run.finish(plan)


async def _resume_in_place(run: ApplyRun) -> None:
    """An item apply in place: every item to its state after (or, rolling back, before), whole."""
    ctx, record = run.ctx, run.journal
    if record.phase is ApplyPhase.APPLYING:
        ctx.log(
            "Resumed after a restart: the server stopped while the items were being put back; "
            "putting every item back again (rolling forward).",
            LogLevel.WARNING,
        )
        await in_place.roll_forward(run)
    elif record.phase is ApplyPhase.ROLLING_BACK:
        ctx.log("Resumed after a restart: finishing the rollback of the items.", LogLevel.WARNING)
        await in_place.restore_before(
            run, record.error or OperationError(OperationErrorCode.APPLY_FAILED, "applying failed")
        )
    elif record.phase is ApplyPhase.RESTARTING:
        await in_place.clear(run)  # the trash a killed process was still removing
        if record.restart and not record.restart_started:
            ctx.log("Resumed after a restart: every item had been put back; restarting now.")
            run.tools.system.enter(SystemState.RESTARTING, record.operation_id)
            await run.run_restart(only=record.sources)
        else:
            ctx.log("Resumed after a restart: every item had been put back.")
        await in_place.report(run)
    else:
        ctx.log("Resumed after a restart: the apply had already finished.")
        if record.error is not None:
            raise OperationFailed(record.error.code, record.error.message)
