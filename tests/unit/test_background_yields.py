"""A background operation's work on the event loop (a verification reading its manifests in
parts) waits between parts while a restore point is created, and stops there on a cancel."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from server.model.records import OperationKind, OperationStatus
from server.operations.live import OperationContext
from server.operations.runner import OperationRunner
from server.storage.db.database import Database


@pytest.fixture
async def runner(tmp_path: Path) -> AsyncIterator[OperationRunner]:
    db = Database(f"sqlite:///{tmp_path / 'ops.db'}")
    db.migrate()
    made = OperationRunner(db)
    await made.start()
    yield made
    await made.stop()
    await db.close()


async def test_parts_wait_while_a_create_goes_and_go_on_after_it(runner: OperationRunner) -> None:
    parts: list[str] = []
    create_may_end = asyncio.Event()
    create_started = asyncio.Event()

    async def background(ctx: OperationContext) -> None:
        for _ in range(200):
            await ctx.between_parts()
            parts.append("create running" if create_started.is_set() and not create_may_end.is_set() else "alone")
            await asyncio.sleep(0)

    async def create(ctx: OperationContext) -> None:
        create_started.set()
        await create_may_end.wait()

    verifying = await runner.submit(OperationKind.VERIFY_BACKUPS, background, requested_by="t", background=True)
    while not parts:
        await asyncio.sleep(0)
    await runner.submit(OperationKind.CREATE_RESTORE_POINT, create, requested_by="t")
    await create_started.wait()
    before = len(parts)
    for _ in range(50):  # the loop turns; no part is read while the create goes
        await asyncio.sleep(0)
    assert len(parts) == before
    create_may_end.set()
    final = await _ended(runner, verifying.id)
    assert final == OperationStatus.SUCCEEDED
    assert "create running" not in parts and len(parts) == 200


async def test_a_cancel_ends_the_wait_and_stops_at_the_part(runner: OperationRunner) -> None:
    parts = 0

    async def background(ctx: OperationContext) -> None:
        nonlocal parts
        while True:
            await ctx.between_parts()
            parts += 1
            await asyncio.sleep(0)

    async def create(ctx: OperationContext) -> None:
        await ctx.hold()  # until cancelled

    verifying = await runner.submit(OperationKind.VERIFY_BACKUPS, background, requested_by="t", background=True)
    while not parts:
        await asyncio.sleep(0)
    creating = await runner.submit(OperationKind.CREATE_RESTORE_POINT, create, requested_by="t")
    waiting = parts
    for _ in range(20):
        await asyncio.sleep(0)
    assert parts == waiting  # waiting for the create
    stopped = await runner.cancel(verifying.id)
    assert stopped.status == OperationStatus.CANCELLED
    await runner.cancel(creating.id)


async def _ended(runner: OperationRunner, op_id: str) -> OperationStatus:
    while (op := await runner.history.get(op_id)) is None or not op.done:
        await asyncio.sleep(0.01)
    return op.status
