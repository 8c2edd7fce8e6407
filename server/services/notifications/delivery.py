"""Sending to one target, off every operation's path: Apprise in a thread of its own pool (its
calls block), each try bounded by a timeout, a message not delivered tried again with backoff
for a bounded time and then given up, the reason kept as the target's lastError.

A burst is folded: after a message is sent, what comes for the target within the fold window
waits and goes out as one message at the window's end (50 failures in a minute: two messages).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import Counter
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime

import apprise

from server.config.notifications_file import APPRISE_LOG, NotificationSpec, parse_apprise_url
from server.model.notifications import Notice, NoticeLevel, NotificationEvent, TargetState
from server.services.notifications.messages import Sender, folded

log = logging.getLogger(__name__)

KEPT = 20  # notices kept whole while a target's window is open; the rest only counted
FIRST_RETRY_SECONDS = 1.0
MAX_RETRY_SECONDS = 60.0
APPRISE_TYPES = {
    NoticeLevel.INFO: apprise.NotifyType.INFO,
    NoticeLevel.SUCCESS: apprise.NotifyType.SUCCESS,
    NoticeLevel.WARNING: apprise.NotifyType.WARNING,
    NoticeLevel.FAILURE: apprise.NotifyType.FAILURE,
}


class NotDelivered(Exception):
    """One try to send failed; the message says why (masked)."""


@dataclass(frozen=True, slots=True)
class DeliveryTimes:
    """How long a try may take, how long a message is retried, how long a burst is folded."""

    timeout: float
    retry: float
    fold: float


class _ThreadLines(logging.Handler):
    """Apprise's log lines, kept for the thread that is sending (each send runs in one thread):
    Apprise says why a send failed only in its log."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self._local = threading.local()

    def start(self) -> list[logging.LogRecord]:
        self._local.lines = []
        lines: list[logging.LogRecord] = self._local.lines
        return lines

    def stop(self) -> None:
        self._local.lines = None

    def emit(self, record: logging.LogRecord) -> None:
        lines = getattr(self._local, "lines", None)
        if lines is not None and len(lines) < 200:
            lines.append(record)


_LINES = _ThreadLines()
APPRISE_LOG.addHandler(_LINES)
APPRISE_LOG.setLevel(logging.DEBUG)


def _reason(lines: list[logging.LogRecord]) -> str:
    """Why Apprise did not deliver, in a few words, from what it logged."""
    texts = [record.getMessage() for record in lines]
    warned = [text for text, record in zip(texts, lines, strict=True) if record.levelno >= logging.WARNING]
    detail = next((text for text in reversed(texts) if "Exception" in text or "rror" in text), "")
    for needle, words in (("timed out", "timed out"), ("Connection refused", "connection refused")):
        if needle in detail or any(needle in text for text in warned):
            return f"{warned[-1] if warned else 'not delivered'} ({words})"
    return warned[-1] if warned else "not delivered (the service did not accept it)"


class AppriseSend:
    """Sends a notice to one target's URL, in a thread of `pool`, within `timeout` seconds."""

    def __init__(self, spec: NotificationSpec, pool: ThreadPoolExecutor, timeout: float) -> None:
        self._spec = spec
        self._pool = pool
        self._timeout = timeout

    async def __call__(self, notice: Notice) -> None:
        loop = asyncio.get_running_loop()
        work = loop.run_in_executor(self._pool, self._send, notice)
        try:
            problem = await asyncio.wait_for(asyncio.shield(work), self._timeout)
        except TimeoutError:
            raise NotDelivered(f"timed out after {self._timeout:g} s (no answer)") from None
        if problem is not None:
            raise NotDelivered(self._spec.scrub(problem))

    def _send(self, notice: Notice) -> str | None:
        lines = _LINES.start()
        try:
            # The plugin itself, not Apprise.notify: that may send from threads of its own, and
            # the lines saying why a send failed are kept for this thread only.
            plugin = parse_apprise_url(self._spec.url)
            if plugin is None:
                return "the URL cannot be used"
            if plugin.notify(body=notice.body, title=notice.title, notify_type=APPRISE_TYPES[notice.level]):
                return None
            return _reason(lines)
        except Exception as error:  # a plugin's own bug: a failed send, not a dead worker
            return f"{type(error).__name__}: {error}"
        finally:
            _LINES.stop()


class TargetWorker:
    """One target's queue and its sending task: notices in, messages out (folded, retried)."""

    def __init__(
        self,
        spec: NotificationSpec,
        send: AppriseSend,
        *,
        times: DeliveryTimes,
        sender: Sender,
        now: Callable[[], datetime],
        save: Callable[[str, TargetState], Awaitable[None]],
    ) -> None:
        self.spec = spec
        self._save = save  # stores the state, so that it outlives a restart
        self.state = TargetState()
        self._send = send
        self._times = times
        self._sender = sender
        self._now = now
        self._kept: list[Notice] = []
        self._more: Counter[NotificationEvent | None] = Counter()
        self._wake = asyncio.Event()
        self._last_flush: float | None = None
        self._task: asyncio.Task[None] | None = None
        self.sent = 0  # messages delivered since start (for tests and the log)

    def wants(self, event: NotificationEvent) -> bool:
        return event in self.spec.events

    def put(self, notice: Notice) -> None:
        """Queue a notice; it goes out at once, or folded at the end of the window."""
        if len(self._kept) < KEPT:
            self._kept.append(notice)
        else:
            self._more[notice.event] += 1
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"notify-{self.spec.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def try_once(self, notice: Notice) -> str | None:
        """Send now, once (testNotification): None when delivered, else why not."""
        try:
            await self._send(notice)
        except NotDelivered as failure:
            await self._set(replace(self.state, last_error=str(failure)))
            return str(failure)
        await self._set(TargetState(last_sent_at=self._now(), last_error=None))
        return None

    async def _set(self, state: TargetState) -> None:
        self.state = state
        try:
            await self._save(self.spec.name, state)
        except Exception as error:  # the database away: the state is still shown, from memory
            log.warning("notification target %r: its state could not be stored: %s", self.spec.name, error)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._last_flush is not None:
                wait = self._last_flush + self._times.fold - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)  # the window: what comes meanwhile is folded in
            kept, more = self._kept, self._more
            self._kept, self._more = [], Counter()
            if not kept:
                continue
            self._last_flush = loop.time()
            try:
                await self._deliver(folded(kept, more, self._sender))
            except Exception:  # never the end of the worker: the next message is tried all the same
                log.exception("notification target %r: a message could not be sent", self.spec.name)

    async def _deliver(self, notice: Notice) -> None:
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + self._times.retry
        delay, tries = FIRST_RETRY_SECONDS, 0
        while True:
            tries += 1
            try:
                await self._send(notice)
            except NotDelivered as failure:
                if loop.time() + delay > give_up_at:
                    why = f"gave up after {tries} tr{'y' if tries == 1 else 'ies'}: {failure}"
                    await self._set(replace(self.state, last_error=why))
                    log.warning("notification target %r (%s): %s", self.spec.name, self.spec.masked_url, why)
                    return
                await self._set(replace(self.state, last_error=f"{failure} (try {tries}; trying again)"))
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_RETRY_SECONDS)
                continue
            self.sent += 1
            await self._set(TargetState(last_sent_at=self._now(), last_error=None))
            return
