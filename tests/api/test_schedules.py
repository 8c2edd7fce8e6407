"""Schedules through the real server: a test clock moved forward (and back) instead of waiting,
a scheduler polling it every 50 ms. Each test has a server of its own (its schedules and
restore points are its own to count)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from tests.support.api import execute
from tests.support.in_process import InProcessServer
from tests.support.schedules import (
    CREATE,
    DELETE,
    LIST,
    RUN,
    UPDATE,
    at,
    create_schedule,
    eventually,
    operations_by,
    read_schedule,
    settled,
)

FAST = {"BACKUPS_SCHEDULER_POLL_SECONDS": "0.05"}
POINT = "query($id: ID!) { restorePoint(id: $id) { id label origin createdBy schedule { id name } } }"


def started(make_server: Callable[..., InProcessServer], **env: str) -> InProcessServer:
    return make_server(**FAST, **env).start()


def now_of(server: InProcessServer) -> datetime:
    return datetime.fromtimestamp(server.clock.time(), UTC)


def advance_past(server: InProcessServer, moment: str, seconds: float = 1) -> None:
    """Move the server's clock just past `moment`."""
    server.clock.advance((at(moment) - now_of(server)).total_seconds() + seconds)


async def quiet(seconds: float = 0.4) -> None:
    """Give the scheduler several polls in which it could (wrongly) start something."""
    await asyncio.sleep(seconds)


async def test_a_schedule_fires_at_its_cron_time_and_never_on_create(
    make_server: Callable[..., InProcessServer],
) -> None:
    server = started(make_server)
    before = now_of(server)
    made = await create_schedule(server, name="nightly", cron="30 2 * * *", timeZone="UTC")
    assert made["enabled"] is True and made["lastRunAt"] is None and made["lastOperation"] is None
    next_run = at(made["nextRunAt"])
    assert before < next_run <= before + timedelta(days=1)
    assert (next_run.hour, next_run.minute, next_run.second) == (2, 30, 0)
    await quiet()
    assert await operations_by(server, "nightly") == []

    advance_past(server, made["nextRunAt"])
    ops = await settled(server, "nightly", 1)
    await quiet()
    ops = await operations_by(server, "nightly")
    assert len(ops) == 1, "one cron time passed: one run"
    run = ops[0]
    assert run["kind"] == "CREATE_RESTORE_POINT" and run["status"] == "SUCCEEDED"
    assert run["requestedBy"] == "schedule:nightly"
    assert any("Scheduled run of schedule 'nightly'" in line["message"] for line in run["log"])
    point = (await execute(server, POINT, id=run["restorePoint"]["id"]))["restorePoint"]
    assert point["origin"] == "SCHEDULED" and point["createdBy"] == "schedule:nightly"
    assert point["schedule"] == {"id": made["id"], "name": "nightly"}
    assert point["label"].startswith("nightly ")

    after = await eventually(lambda: _with_success(server, made["id"]))
    assert after["lastOperation"]["id"] == run["id"]
    assert at(after["nextRunAt"]) == next_run + timedelta(days=1)
    assert at(after["lastRunAt"]) >= next_run


async def _with_success(server: InProcessServer, schedule_id: str) -> dict | None:
    schedule = await read_schedule(server, schedule_id)
    return schedule if schedule and schedule["lastSuccessAt"] else None


async def test_run_schedule_runs_at_once_and_keeps_the_next_time(make_server: Callable[..., InProcessServer]) -> None:
    server = started(make_server)
    made = await create_schedule(
        server, name="by-hand", cron="0 4 * * 1", timeZone="Europe/Berlin", labelTemplate="{schedule} at {datetime}"
    )
    payload = (await execute(server, RUN, id=made["id"]))["runSchedule"]
    assert payload["userErrors"] == []
    assert payload["operation"]["requestedBy"] == "schedule:by-hand"
    ops = await settled(server, "by-hand", 1)
    assert ops[0]["status"] == "SUCCEEDED"
    assert ops[0]["restorePoint"]["label"].startswith("by-hand at ")
    schedule = await eventually(lambda: _with_success(server, made["id"]))
    assert schedule["nextRunAt"] == made["nextRunAt"]
    for bad in ("sch_000000000000000000000000", "rp_000000000000000000000000", "x"):
        refused = (await execute(server, RUN, id=bad))["runSchedule"]
        assert [(e["code"], e["field"]) for e in refused["userErrors"]] == [("NOT_FOUND", "id")]


async def test_pausing_and_resuming_never_runs_at_once(make_server: Callable[..., InProcessServer]) -> None:
    server = started(make_server)
    made = await create_schedule(server, name="pausable", cron="0 * * * *")
    paused = await execute(server, UPDATE, id=made["id"], input={"name": "pausable", "enabled": False})
    assert paused["updateSchedule"]["schedule"]["enabled"] is False
    assert paused["updateSchedule"]["schedule"]["nextRunAt"] is None
    server.clock.advance(5 * 3600)  # five cron times pass while paused
    await quiet()
    assert await operations_by(server, "pausable") == []

    resumed = await execute(server, UPDATE, id=made["id"], input={"name": "pausable", "enabled": True})
    schedule = resumed["updateSchedule"]["schedule"]
    assert schedule["enabled"] is True
    now = now_of(server)
    assert now < at(schedule["nextRunAt"]) <= now + timedelta(hours=1)
    await quiet()
    assert await operations_by(server, "pausable") == [], "a resume must not run the schedule at once"


async def test_a_clock_jump_forward_gives_one_run_and_back_recomputes(
    make_server: Callable[..., InProcessServer],
) -> None:
    server = started(make_server)
    made = await create_schedule(server, name="hourly", cron="15 * * * *")
    server.clock.advance(10 * 24 * 3600)  # 240 cron times at once
    await settled(server, "hourly", 1)
    await quiet()
    assert len(await operations_by(server, "hourly")) == 1, "a jump forward must not make a burst"
    schedule = await eventually(lambda: _with_success(server, made["id"]))
    now = now_of(server)
    assert now < at(schedule["nextRunAt"]) <= now + timedelta(hours=1)

    server.clock.advance(-3 * 24 * 3600)  # the clock goes back three days

    async def moved_back() -> dict | None:
        current = await read_schedule(server, made["id"])
        return current if current and at(current["nextRunAt"]) <= now_of(server) + timedelta(hours=1) else None

    schedule = await eventually(moved_back)
    now = now_of(server)
    assert now < at(schedule["nextRunAt"]) <= now + timedelta(hours=1)
    assert at(schedule["nextRunAt"]).minute == 15
    await quiet()
    assert len(await operations_by(server, "hourly")) == 1


async def test_a_run_missed_while_stopped_runs_once_at_start_up(make_server: Callable[..., InProcessServer]) -> None:
    server = started(make_server)
    made = await create_schedule(server, name="catch-up", cron="*/10 * * * *")
    assert server.stop() == 0
    server.clock.advance(6 * 3600)  # 36 cron times while stopped
    server.start()
    ops = await settled(server, "catch-up", 1)
    await quiet()
    ops = await operations_by(server, "catch-up")
    assert len(ops) == 1, "missed runs are caught up once, not once per missed time"
    assert ops[0]["status"] == "SUCCEEDED"
    assert any("while the server was stopped" in line["message"] for line in ops[0]["log"])
    schedule = await eventually(lambda: _with_success(server, made["id"]))
    assert at(schedule["nextRunAt"]) > now_of(server)


async def test_a_run_due_while_the_previous_one_goes_waits_and_runs_once(
    make_server: Callable[..., InProcessServer],
) -> None:
    server = started(make_server, BACKUPS_TEST_ENTRY_DELAY="0.3")
    made = await create_schedule(server, name="overlap", cron="*/5 * * * *")
    first = (await execute(server, RUN, id=made["id"]))["runSchedule"]["operation"]
    again = (await execute(server, RUN, id=made["id"]))["runSchedule"]
    assert [e["code"] for e in again["userErrors"]] == ["BUSY"]
    server.clock.advance(3600)  # twelve cron times pass while the first run goes
    ops = await settled(server, "overlap", 2, timeout=60)
    await quiet(1)
    ops = await operations_by(server, "overlap")
    assert len(ops) == 2, [op["id"] for op in ops]
    waited = next(op for op in ops if op["id"] != first["id"])
    assert waited["status"] == "SUCCEEDED"
    assert any(
        "previous run of this schedule was still going" in line["message"] and "waited" in line["message"]
        for line in waited["log"]
    )
    assert at(waited["startedAt"]) >= at(next(op for op in ops if op["id"] == first["id"])["finishedAt"])


async def test_a_run_due_during_an_apply_waits_and_runs_once_after_it(
    make_server: Callable[..., InProcessServer],
) -> None:
    from tests.support.api import create_and_wait, wait_for_operation
    from tests.support.apply import start_apply

    server = started(make_server, BACKUPS_TEST_ENTRY_DELAY="0.3")
    point = (await create_and_wait(server, "to apply"))["restorePoint"]["id"]
    made = await create_schedule(server, name="during-apply", cron="0 * * * *")
    apply_op = await start_apply(server, point, safety=True)
    server.clock.advance(3 * 3600)
    await quiet()
    assert await operations_by(server, "during-apply") == [], "nothing may start beside an apply"
    final_apply = await wait_for_operation(server, apply_op["id"], timeout=120)
    assert final_apply["status"] == "SUCCEEDED"
    ops = await settled(server, "during-apply", 1, timeout=60)
    await quiet()
    ops = await operations_by(server, "during-apply")
    assert len(ops) == 1
    assert ops[0]["status"] == "SUCCEEDED"
    assert any("applying a restore point" in line["message"] and "waited" in line["message"] for line in ops[0]["log"])
    assert (await read_schedule(server, made["id"]))["lastOperation"]["id"] == ops[0]["id"]


async def test_deleting_a_schedule_while_it_runs_keeps_the_run_and_its_restore_point(
    make_server: Callable[..., InProcessServer],
) -> None:
    server = started(make_server, BACKUPS_TEST_ENTRY_DELAY="0.3")
    made = await create_schedule(server, name="doomed", cron="0 0 * * *")
    run = (await execute(server, RUN, id=made["id"]))["runSchedule"]["operation"]
    deleted = (await execute(server, DELETE, id=made["id"]))["deleteSchedule"]
    assert deleted == {"deletedId": made["id"], "userErrors": []}
    ops = await settled(server, "doomed", 1, timeout=60)
    assert ops[0]["id"] == run["id"] and ops[0]["status"] == "SUCCEEDED"
    point = (await execute(server, POINT, id=ops[0]["restorePoint"]["id"]))["restorePoint"]
    assert point["origin"] == "SCHEDULED" and point["schedule"] is None
    assert await read_schedule(server, made["id"]) is None
    again = (await execute(server, DELETE, id=made["id"]))["deleteSchedule"]
    assert [(e["code"], e["field"]) for e in again["userErrors"]] == [("NOT_FOUND", "id")]


async def test_bad_schedules_are_refused_and_nothing_changes(make_server: Callable[..., InProcessServer]) -> None:
    server = started(make_server)
    kept = await create_schedule(
        server, name="kept", cron="0 3 * * *", timeZone="Europe/Berlin", retention={"keepLast": 3}
    )
    other = await create_schedule(server, name="other", cron="0 4 * * *")
    before = (await execute(server, LIST))["schedules"]
    bad_inputs = [
        ({"cron": "61 * * * *"}, "cron"),
        ({"cron": "* * *"}, "cron"),
        ({"cron": "* * * * * *"}, "cron"),
        ({"cron": "@daily"}, "cron"),
        ({"cron": "0 0 30 2 *"}, "cron"),
        ({"cron": "not a cron"}, "cron"),
        ({"cron": None}, "cron"),
        ({"timeZone": "Mars/Olympus_Mons"}, "timeZone"),
        ({"timeZone": "../../etc/passwd"}, "timeZone"),
        ({"timeZone": ""}, "timeZone"),
        ({"retention": {"keepLast": 0}}, "retention.keepLast"),
        ({"retention": {"keepDaily": -1}}, "retention.keepDaily"),
        ({"retention": {"keepWithinDays": 0}}, "retention.keepWithinDays"),
        ({"retention": {"keepYearly": -5, "keepLast": 2}}, "retention.keepYearly"),
        ({"jitterSeconds": -1}, "jitterSeconds"),
        ({"labelTemplate": "{schedule} {__class__}"}, "labelTemplate"),
        ({"afterChangeQuietSeconds": 0}, "afterChangeQuietSeconds"),
        ({"afterChangeQuietSeconds": -5}, "afterChangeQuietSeconds"),
        ({"afterChangeQuietSeconds": 7 * 24 * 3600 + 1}, "afterChangeQuietSeconds"),
        ({"afterChangeQuietSeconds": 0, "cron": None}, "afterChangeQuietSeconds"),
        ({"copyToLocations": ["offsite"]}, "copyToLocations"),
        ({"name": ""}, "name"),
        ({"name": "bad\nname"}, "name"),
        ({"name": "other"}, "name"),  # a duplicate
    ]
    for change, field in bad_inputs:
        given = {"name": "fresh", "cron": "0 1 * * *", **change}
        created = (await execute(server, CREATE, input=given))["createSchedule"]
        assert created["schedule"] is None, change
        assert [(e["code"], e["field"]) for e in created["userErrors"]] == [("INVALID_INPUT", field)], change
        updated = (await execute(server, UPDATE, id=kept["id"], input={"name": "kept", **change}))["updateSchedule"]
        assert updated["schedule"] is None, change
        assert [(e["code"], e["field"]) for e in updated["userErrors"]] == [("INVALID_INPUT", field)], change
    assert (await execute(server, LIST))["schedules"] == before
    assert [s["name"] for s in before] == ["kept", "other"] and other["id"] != kept["id"]


async def test_two_run_schedules_at_once_start_one_run(make_server: Callable[..., InProcessServer]) -> None:
    from tests.support.api import wait_for_operation

    server = started(make_server)
    made = await create_schedule(server, name="raced", cron="0 0 1 1 *")
    for _ in range(15):
        first, second = await asyncio.gather(execute(server, RUN, id=made["id"]), execute(server, RUN, id=made["id"]))
        payloads = [first["runSchedule"], second["runSchedule"]]
        started_ops = [p["operation"] for p in payloads if p["operation"] is not None]
        assert len(started_ops) == 1, payloads
        assert [e["code"] for p in payloads for e in p["userErrors"]] == ["BUSY"]
        assert (await wait_for_operation(server, started_ops[0]["id"]))["status"] == "SUCCEEDED"
    assert len(await operations_by(server, "raced")) == 15


async def test_run_now_as_soon_as_the_previous_run_reads_done_starts_the_next(
    make_server: Callable[..., InProcessServer],
) -> None:
    """A run whose SUCCEEDED readers already see is over for the user, while its final state
    is still being written (here held 2 s): "Run now" then starts the next run, not BUSY."""
    server = started(make_server, BACKUPS_TEST_FINAL_WRITE_DELAY="2")
    made = await create_schedule(server, name="again", cron="0 0 1 1 *")
    first = (await execute(server, RUN, id=made["id"]))["runSchedule"]["operation"]
    status = "query($id: ID!) { operation(id: $id) { done status } }"

    async def done() -> dict | None:
        op = (await execute(server, status, id=first["id"]))["operation"]
        return op if op["done"] else None

    assert (await eventually(done))["status"] == "SUCCEEDED"
    second = (await execute(server, RUN, id=made["id"]))["runSchedule"]
    assert second["userErrors"] == []
    assert second["operation"]["id"] != first["id"]
    ops = await settled(server, "again", 2)
    assert [op["status"] for op in ops] == ["SUCCEEDED", "SUCCEEDED"]
