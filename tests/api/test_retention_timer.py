"""Retention on its timer: its last run is stored with the schedule, so a server restarted more
often than the timer's period still prunes (Home Assistant's day-based retention never ran on
such machines)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.support.api import execute, wait_for_operation
from tests.support.in_process import InProcessServer
from tests.support.schedules import OPERATIONS, RUN, create_schedule, eventually, settled

FAST = {"BACKUPS_SCHEDULER_POLL_SECONDS": "0.05"}
EXISTS = "query($id: ID!) { restorePoint(id: $id) { id } }"


async def _exists(server: InProcessServer, point_id: str) -> bool:
    return (await execute(server, EXISTS, id=point_id))["restorePoint"] is not None


async def _run(server: InProcessServer, schedule_id: str) -> str:
    payload = (await execute(server, RUN, id=schedule_id))["runSchedule"]
    assert payload["userErrors"] == []
    final = await wait_for_operation(server, payload["operation"]["id"])
    assert final["status"] == "SUCCEEDED"
    return final["restorePoint"]["id"]


async def _prunes(server: InProcessServer, name: str) -> list[dict[str, Any]]:
    ops = (await execute(server, OPERATIONS, by=f"schedule:{name}"))["operations"]["nodes"]
    return [op for op in ops if op["kind"] == "PRUNE_RESTORE_POINTS"]


async def test_day_based_retention_runs_on_a_server_restarted_more_often_than_its_timer(
    make_server: Callable[..., InProcessServer],
) -> None:
    server = make_server(**FAST).start()
    schedule = await create_schedule(server, name="daily", cron="0 0 1 1 *", retention={"keepWithinDays": 1})
    older = await _run(server, schedule["id"])
    await settled(server, "daily", 2)  # the run and its prune (nothing to delete: within a day)
    server.clock.advance(600)
    newest = await _run(server, schedule["id"])
    await settled(server, "daily", 4)
    assert [p["status"] for p in await _prunes(server, "daily")] == ["SUCCEEDED", "SUCCEEDED"]

    # Restarted every 50 minutes (less than the timer's hour) for a day and a bit: every start
    # reads when it last pruned, so the hour is counted across the restarts.
    for _ in range(31):
        server.stop()
        server.clock.advance(50 * 60)
        server.start()
    pruned = await eventually(lambda: _deleted(server, older))
    assert await _exists(server, newest), "the newest restore point of the schedule is always kept"
    prunes = await _prunes(server, "daily")
    assert len(prunes) == 3
    timed = (await execute(server, LOG, id=pruned))["operation"]
    messages = [line["message"] for line in timed["log"]]
    assert "Pruned on the retention timer." in messages
    assert any(older in line and "Deleted restore point" in line for line in messages), messages


LOG = "query($id: ID!) { operation(id: $id) { status log { message } } }"


async def _deleted(server: InProcessServer, point_id: str) -> str | None:
    """The id of the prune that deleted it, once it is gone and that prune has ended."""
    if await _exists(server, point_id):
        return None
    prunes = await _prunes(server, "daily")
    return prunes[0]["id"] if prunes and all(p["done"] for p in prunes) else None


SAFETY_POINT = "query($id: ID!) { restorePoint(id: $id) { id origin pinned } }"
PIN = "mutation($id: ID!) { updateRestorePoint(id: $id, pinned: true) { userErrors { code } } }"


async def test_safety_restore_points_past_their_age_limit_are_deleted_but_never_pinned_or_the_newest(
    make_server: Callable[..., InProcessServer],
) -> None:
    from tests.support.api import create_and_wait
    from tests.support.apply import OPERATION_WITH_LOG, start_apply

    server = make_server(**FAST, BACKUPS_SAFETY_MAX_AGE_DAYS="10").start()
    manual = (await create_and_wait(server, "by hand"))["restorePoint"]["id"]
    safety = []
    for _ in range(4):  # two days apart: none is past ten days while they are made
        op = await start_apply(server, manual)
        assert (await wait_for_operation(server, op["id"]))["status"] == "SUCCEEDED"
        made = (await execute(server, OPERATION_WITH_LOG, id=op["id"]))["operation"]["safetyRestorePoint"]
        assert made["origin"] == "SAFETY"
        safety.append(made["id"])
        server.clock.advance(2 * 86400)
    assert (await execute(server, PIN, id=safety[1]))["updateRestorePoint"]["userErrors"] == []
    assert await _safety_prunes(server) == []

    server.clock.advance(11 * 86400)  # every one is now older than ten days
    prunes = await eventually(lambda: _done_safety_prunes(server))
    assert [p["status"] for p in prunes] == ["SUCCEEDED"]
    assert [await _exists(server, p) for p in safety] == [False, True, False, True], "pinned and newest stay"
    assert await _exists(server, manual)
    messages = [line["message"] for line in (await execute(server, LOG, id=prunes[0]["id"]))["operation"]["log"]]
    for gone in (safety[0], safety[2]):
        assert any(gone in m and m.startswith("Deleted restore point") and "older than 10 days" in m for m in messages)
    assert sum(m.startswith("Deleted restore point") for m in messages) == 2, messages


async def _safety_prunes(server: InProcessServer) -> list[dict[str, Any]]:
    ops = (await execute(server, OPERATIONS, by="server:safety-age-limit"))["operations"]["nodes"]
    return [op for op in ops if op["kind"] == "PRUNE_RESTORE_POINTS"]


async def _done_safety_prunes(server: InProcessServer) -> list[dict[str, Any]] | None:
    prunes = await _safety_prunes(server)
    return prunes if prunes and all(p["done"] for p in prunes) else None
