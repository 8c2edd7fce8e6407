from __future__ import annotations

import asyncio

from server.operations.signal import Signal


async def test_waiters_wake_on_fire_and_coalesce() -> None:
    signal = Signal()
    seen = signal.version
    woken = asyncio.ensure_future(signal.wait(seen))
    await asyncio.sleep(0)
    assert not woken.done() and signal.waiting == 1
    signal.fire()
    signal.fire()  # two changes, one wake-up: the listener reads the newest state
    await asyncio.wait_for(woken, 1)
    assert signal.version == seen + 2 and signal.waiting == 0


async def test_wait_returns_at_once_when_already_moved() -> None:
    signal = Signal()
    signal.fire()
    await asyncio.wait_for(signal.wait(0), 0.1)


async def test_cancelled_waiter_does_not_disturb_others() -> None:
    signal = Signal()
    first = asyncio.ensure_future(signal.wait(0))
    second = asyncio.ensure_future(signal.wait(0))
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.gather(first, return_exceptions=True)
    signal.fire()
    await asyncio.wait_for(second, 1)
    assert signal.waiting == 0


async def test_wait_times_out_quietly() -> None:
    await Signal().wait(0, timeout=0.01)


async def test_a_waiter_that_timed_out_leaves_nothing_behind() -> None:
    signal = Signal()
    await signal.wait(0, timeout=0.01)
    assert signal.waiting == 0
    signal.fire()
    assert signal.version == 1
