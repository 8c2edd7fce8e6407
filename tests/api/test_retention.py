"""Retention per schedule through the real server: the preview says keep or delete and why,
the prune deletes exactly that, and never a pinned, manual or the newest restore point."""

from __future__ import annotations

from collections.abc import Callable

from tests.support.api import create_and_wait, execute, wait_for_operation
from tests.support.in_process import InProcessServer
from tests.support.schedules import PREVIEW, PRUNE, RUN, UPDATE, create_schedule, eventually, operations_by, settled

FAST = {"BACKUPS_SCHEDULER_POLL_SECONDS": "0.05"}
PIN = """mutation($id: ID!) { updateRestorePoint(id: $id, pinned: true) { userErrors { code } } }"""
EXISTS = "query($id: ID!) { restorePoint(id: $id) { id } }"
LOG = "query($id: ID!) { operation(id: $id) { kind status log { message } } }"


async def _runs(server: InProcessServer, schedule_id: str, name: str, count: int) -> list[str]:
    """Run the schedule `count` times, an hour apart on its clock; the restore point ids, oldest first."""
    made = []
    for number in range(count):
        payload = (await execute(server, RUN, id=schedule_id))["runSchedule"]
        assert payload["userErrors"] == []
        final = await wait_for_operation(server, payload["operation"]["id"])
        assert final["status"] == "SUCCEEDED"
        made.append(final["restorePoint"]["id"])
        await settled(server, name, number + 1)
        server.clock.advance(3600)
    return made


async def _exists(server: InProcessServer, point_id: str) -> bool:
    return (await execute(server, EXISTS, id=point_id))["restorePoint"] is not None


async def test_the_prune_deletes_exactly_what_the_preview_said(make_server: Callable[..., InProcessServer]) -> None:
    server = make_server(**FAST).start()
    schedule = await create_schedule(server, name="kept-tidy", cron="0 0 1 1 *")
    points = await _runs(server, schedule["id"], "kept-tidy", 5)  # no retention yet: nothing pruned
    assert all([await _exists(server, p) for p in points])
    manual = (await create_and_wait(server, "by hand"))["restorePoint"]["id"]
    assert (await execute(server, PIN, id=points[1]))["updateRestorePoint"]["userErrors"] == []

    updated = await execute(
        server, UPDATE, id=schedule["id"], input={"name": "kept-tidy", "retention": {"keepLast": 2}}
    )
    assert updated["updateSchedule"]["schedule"]["retention"]["keepLast"] == 2
    preview = (await execute(server, PREVIEW, id=schedule["id"]))["retentionPreview"]
    assert [d["restorePoint"]["id"] for d in preview] == points[::-1], "newest first, the schedule's own only"
    decision = {d["restorePoint"]["id"]: d for d in preview}
    assert decision[points[4]]["keep"] and decision[points[4]]["reasons"] == [
        "the newest restore point of the schedule",
        "keepLast: 1 of the newest 2",
    ]
    assert decision[points[3]]["keep"] and decision[points[3]]["reasons"] == ["keepLast: 2 of the newest 2"]
    assert decision[points[1]]["keep"] and decision[points[1]]["reasons"] == ["pinned"]
    to_delete = {p for p, d in decision.items() if not d["keep"]}
    assert to_delete == {points[0], points[2]}
    assert all(decision[p]["reasons"] == ["kept by no retention rule"] for p in to_delete)

    prune = (await execute(server, PRUNE, id=schedule["id"]))["pruneSchedule"]
    assert prune["userErrors"] == [] and prune["operation"]["kind"] == "PRUNE_RESTORE_POINTS"
    final = await wait_for_operation(server, prune["operation"]["id"])
    assert final["status"] == "SUCCEEDED"
    gone = {p for p in [*points, manual] if not await _exists(server, p)}
    assert gone == to_delete
    log = [line["message"] for line in (await execute(server, LOG, id=final["id"]))["operation"]["log"]]
    for point_id in to_delete:
        assert any(point_id in line and "kept by no retention rule" in line for line in log), log
    assert any(line == "Retention policy: keepLast=2." for line in log), log

    # A scheduled run prunes by itself afterwards: the oldest unpinned one goes, the pin stays.
    newest = (await _runs(server, schedule["id"], "kept-tidy", 1))[0]

    async def pruned() -> list[dict] | None:
        ops = await operations_by(server, "kept-tidy")
        prunes = [op for op in ops if op["kind"] == "PRUNE_RESTORE_POINTS"]
        return prunes if prunes and all(op["done"] for op in prunes) else None

    prunes = await eventually(pruned)
    assert [op["status"] for op in prunes] == ["SUCCEEDED"]
    remaining = {p for p in [*points, newest, manual] if await _exists(server, p)}
    assert remaining == {newest, points[4], points[1], manual}


async def test_zero_or_negative_keep_counts_change_nothing(make_server: Callable[..., InProcessServer]) -> None:
    server = make_server(**FAST).start()
    schedule = await create_schedule(server, name="forever", cron="0 0 1 1 *", retention={"keepDaily": 7})
    for bad in ({"keepLast": 0}, {"keepWithinDays": 0}, {"keepMonthly": -1}):
        result = await execute(server, UPDATE, id=schedule["id"], input={"name": "forever", "retention": bad})
        assert [e["code"] for e in result["updateSchedule"]["userErrors"]] == ["INVALID_INPUT"]
    preview_errors = await execute(server, "query { schedules { retention { keepDaily keepLast keepWithinDays } } }")
    assert preview_errors["schedules"] == [{"retention": {"keepDaily": 7, "keepLast": None, "keepWithinDays": None}}]


async def test_a_prune_keeps_a_restore_point_an_export_is_reading(make_server: Callable[..., InProcessServer]) -> None:
    server = make_server(**FAST, BACKUPS_TEST_ENTRY_DELAY="0.3").start()
    schedule = await create_schedule(server, name="held", cron="0 0 1 1 *")
    points = await _runs(server, schedule["id"], "held", 2)
    await execute(server, UPDATE, id=schedule["id"], input={"name": "held", "retention": {"keepLast": 1}})
    export = await execute(
        server,
        "mutation($id: ID!) { exportRestorePoint(restorePointId: $id) { operation { id } userErrors { code } } }",
        id=points[0],
    )
    export_id = export["exportRestorePoint"]["operation"]["id"]
    prune = (await execute(server, PRUNE, id=schedule["id"]))["pruneSchedule"]["operation"]
    final = await wait_for_operation(server, prune["id"], timeout=60)
    assert final["status"] == "SUCCEEDED"
    log = [line["message"] for line in (await execute(server, LOG, id=final["id"]))["operation"]["log"]]
    assert any(points[0] in line and "an operation is using it" in line for line in log), log
    assert await _exists(server, points[0])
    assert (await wait_for_operation(server, export_id, timeout=60))["status"] == "SUCCEEDED"
    again = (await execute(server, PRUNE, id=schedule["id"]))["pruneSchedule"]["operation"]
    assert (await wait_for_operation(server, again["id"]))["status"] == "SUCCEEDED"
    assert not await _exists(server, points[0]) and await _exists(server, points[1])


async def test_preview_of_an_unknown_schedule_is_not_found(make_server: Callable[..., InProcessServer]) -> None:
    from tests.support.api import execute_errors

    server = make_server(**FAST).start()
    for bad in ("sch_000000000000000000000000", "nonsense"):
        errors = await execute_errors(server, PREVIEW, id=bad)
        assert errors[0]["extensions"]["code"] == "NOT_FOUND"
        prune = (await execute(server, PRUNE, id=bad))["pruneSchedule"]
        assert [(e["code"], e["field"]) for e in prune["userErrors"]] == [("NOT_FOUND", "id")]
