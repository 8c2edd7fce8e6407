"""The restart at the end of an apply: the configured command, or an in-process reload."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping, Sequence

from server.model.errors import OperationErrorCode
from server.model.records import LogLevel
from server.operations.live import OperationContext
from server.sources.base import Source

MAX_LINE = 2000  # longer output lines are cut, so one runaway line cannot flood the log
MAX_LINES = 1000  # lines logged per run; the rest is counted, not stored
READ_CHUNK = 64 * 1024


class RestartFailed(Exception):
    """The restart step did not complete; `code` is RESTART_FAILED or RESTART_TIMEOUT."""

    def __init__(self, code: OperationErrorCode, detail: str) -> None:
        super().__init__(detail)
        self.code = OperationErrorCode(code)
        self.detail = detail


class RestartStep:
    def __init__(self, *, command: str | None, timeout: float, sources: Sequence[Source]) -> None:
        self.command = command.strip() if command and command.strip() else None
        self.timeout = timeout
        self._sources = sources

    async def run(self, ctx: OperationContext, env: Mapping[str, str], *, only: Sequence[str] | None = None) -> None:
        """Restart what uses the configuration; raises RestartFailed when that fails. `only`
        (an item apply in place): in process, just these sources are reloaded, each with its
        quick check where it has one (a folder: its root is there; not a walk of the tree)."""
        if self.command is None:
            await self._reload(ctx, only)
        else:
            await self._run_command(ctx, self.command, env)

    async def _reload(self, ctx: OperationContext, only: Sequence[str] | None = None) -> None:
        # Nothing in this process caches the configuration: every read goes to the source.
        # A source that does keep state offers reload(); describe() shows each one answers.
        which = "every source" if only is None else "source(s) " + ", ".join(repr(name) for name in only)
        ctx.log(f"Restarting in process (no BACKUPS_RESTART_COMMAND is set): reloading {which}.")
        for source in self._sources:
            if only is not None and source.name not in only:
                continue
            reload = getattr(source, "reload", None)
            quick = getattr(source, "describe_quickly", None) if only is not None else None
            try:
                if reload is not None:
                    await reload()
                info = await (quick() if quick is not None else source.describe())
            except Exception as error:
                raise RestartFailed(
                    OperationErrorCode.RESTART_FAILED, f"source {source.name!r} did not reload: {error}"
                ) from error
            state = "reachable" if info.reachable else "NOT reachable"
            ctx.log(f"Reloaded source {info.name!r} ({info.kind}): {state}, {info.detail or 'no detail'}.")
            if not info.reachable:
                raise RestartFailed(
                    OperationErrorCode.RESTART_FAILED, f"source {source.name!r} is not reachable after the reload"
                )

    async def _run_command(self, ctx: OperationContext, command: str, env: Mapping[str, str]) -> None:
        ctx.log(f"Running the restart command (timeout {self.timeout:g} s): {command}")
        await ctx.flush()  # the command may stop this very server: the line must be stored first
        try:
            process = await asyncio.create_subprocess_shell(
                command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env={**os.environ, **env},
                start_new_session=True,  # its own process group, so a timeout stops all of it
            )
        except OSError as error:
            raise RestartFailed(
                OperationErrorCode.RESTART_FAILED, f"the restart command could not start: {error}"
            ) from error
        assert process.stdout is not None
        output = OutputLog(ctx)
        try:
            async with asyncio.timeout(self.timeout):
                while chunk := await process.stdout.read(READ_CHUNK):
                    output.feed(chunk)
                code = await process.wait()
        except TimeoutError:
            _kill_group(process.pid)
            await process.wait()
            output.close()
            raise RestartFailed(
                OperationErrorCode.RESTART_TIMEOUT,
                f"the restart command did not finish within {self.timeout:g} s and was stopped",
            ) from None
        output.close()
        if code != 0:
            raise RestartFailed(OperationErrorCode.RESTART_FAILED, f"the restart command exited with code {code}")
        ctx.log("The restart command finished (exit code 0).")


class OutputLog:
    """Turns a command's output into log lines (cut at MAX_LINE, at most MAX_LINES)."""

    def __init__(self, ctx: OperationContext) -> None:
        self._ctx = ctx
        self._pending = b""
        self._logged = 0
        self._dropped = 0

    def feed(self, chunk: bytes) -> None:
        self._pending += chunk
        *lines, self._pending = self._pending.split(b"\n")
        for line in lines:
            self._emit(line)
        while len(self._pending) > MAX_LINE * 4:  # no newline for a long while: log a piece
            self._emit(self._pending[:MAX_LINE])
            self._pending = self._pending[MAX_LINE:]

    def close(self) -> None:
        if self._pending:
            self._emit(self._pending)
            self._pending = b""
        if self._dropped:
            self._ctx.log(f"restart> ({self._dropped} more lines of output not logged)", LogLevel.WARNING)

    def _emit(self, raw: bytes) -> None:
        if self._logged >= MAX_LINES:
            self._dropped += 1
            return
        text = raw.decode("utf-8", errors="replace").rstrip("\r")
        if len(text) > MAX_LINE:
            text = text[:MAX_LINE] + "…"
        self._logged += 1
        self._ctx.log(f"restart> {text}")


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
