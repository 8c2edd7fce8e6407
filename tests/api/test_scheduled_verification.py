"""Verification schedules through the real server: a schedule whose runs verify the restore
points (VERIFY_BACKUPS) on its own cron and time zone, skipping those verified within its
outdatedAfterDays; shown by `schedules`, the health and /metrics; one run at a time, stopped for
an apply (which never waits for it), paused while a restore point is created (which starts at
once). A test clock is moved instead of waiting."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.api.test_packs import many_files, site_config
from tests.docs.markdown_blocks import DOCS, blocks
from tests.support.api import (
    auth_headers,
    create_and_wait,
    create_restore_point,
    execute,
    log_lines,
    wait_for_operation,
)
from tests.support.apply import apply, wait_for_log
from tests.support.in_process import InProcessServer
from tests.support.schedules import CREATE, LIST, RUN, UPDATE, at, eventually, operations_by, read_schedule

FAST = {"BACKUPS_SCHEDULER_POLL_SECONDS": "0.05"}
KIND = """query($id: ID!) { schedule(id: $id) { id kind cron timeZone nextRunAt lastSuccessAt
    verification { readPercent outdatedAfterDays copies } } }"""
VERIFY = """mutation { verifyBackups(copies: false) { operation { id } userErrors { code message field } } }"""
VERIFIED = "query($id: ID!) { restorePoint(id: $id) { verification { state verifiedAt } } }"
HEALTH = "{ backupHealth { status problems issues { subjectKind subjectId operationId } lastSuccessAt } }"
LOG = "query($id: ID!) { operation(id: $id) { log { at message } } }"
CANCEL = "mutation($id: ID!) { cancelOperation(id: $id) { operation { id status } userErrors { code } } }"


def now_of(server: InProcessServer) -> datetime:
    return datetime.fromtimestamp(server.clock.time(), UTC)


def advance_past(server: InProcessServer, moment: str) -> None:
    server.clock.advance((at(moment) - now_of(server)).total_seconds() + 1)


async def verification_schedule(server: InProcessServer, name: str, **verification: Any) -> dict[str, Any]:
    given = {"name": name, "cron": "0 3 * * *", "timeZone": "Europe/Berlin", "verification": verification}
    payload = (await execute(server, CREATE, input=given))["createSchedule"]
    assert payload["userErrors"] == [], payload
    return (await execute(server, KIND, id=payload["schedule"]["id"]))["schedule"]


async def runs(server: InProcessServer, name: str, count: int) -> list[dict[str, Any]]:
    """Wait until the schedule has started `count` operations, all ended; newest first."""

    async def check() -> list[dict[str, Any]] | None:
        ops = await operations_by(server, name)
        return ops if len(ops) >= count and all(op["done"] for op in ops) else None

    return await eventually(check, timeout=60)


def messages(op: dict[str, Any]) -> list[str]:
    return [line["message"] for line in op["log"]]


async def metrics(server: InProcessServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"{server.url}/metrics", headers=auth_headers(server))).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_a_verification_schedule_runs_on_its_cron_and_skips_what_was_verified_lately(
    make_server: Callable[..., InProcessServer],
) -> None:
    server = make_server(**FAST).start()
    first = (await create_and_wait(server, "first"))["restorePoint"]["id"]
    second = (await create_and_wait(server, "second"))["restorePoint"]["id"]
    made = await verification_schedule(server, "weekly-check", readPercent=100, outdatedAfterDays=7)
    assert made["kind"] == "VERIFY" and made["cron"] == "0 3 * * *" and made["timeZone"] == "Europe/Berlin"
    assert made["verification"] == {"readPercent": 100, "outdatedAfterDays": 7, "copies": True}
    listed = (await execute(server, LIST))["schedules"]
    assert [s["name"] for s in listed] == ["weekly-check"] and listed[0]["lastOperation"] is None
    assert await operations_by(server, "weekly-check") == [], "creating a schedule never runs it"
    due = at(made["nextRunAt"]).astimezone(ZoneInfo("Europe/Berlin"))
    assert (due.hour, due.minute) == (3, 0), "03:00 in its own time zone"

    advance_past(server, made["nextRunAt"])
    (run,) = await runs(server, "weekly-check", 1)
    assert run["kind"] == "VERIFY_BACKUPS" and run["status"] == "SUCCEEDED", run
    assert run["requestedBy"] == "schedule:weekly-check"
    assert any("Scheduled run of schedule 'weekly-check'" in m for m in messages(run))
    assert any("Skipped 0 restore point(s) verified within 7 day(s); 2 to verify" in m for m in messages(run))
    for point in (first, second):
        found = (await execute(server, VERIFIED, id=point))["restorePoint"]["verification"]
        assert found["state"] == "OK"
    after = await eventually(lambda: _succeeded(server, made["id"]))
    assert at(after["nextRunAt"]) == at(made["nextRunAt"]) + timedelta(days=1)
    assert (await execute(server, HEALTH))["backupHealth"]["lastSuccessAt"] is not None

    # The next night: the two verified yesterday are skipped, the new one is read.
    third = (await create_and_wait(server, "third"))["restorePoint"]["id"]
    advance_past(server, after["nextRunAt"])
    newest = (await runs(server, "weekly-check", 2))[0]
    assert newest["status"] == "SUCCEEDED"
    assert any("Skipped 2 restore point(s) verified within 7 day(s); 1 to verify" in m for m in messages(newest))
    assert (await execute(server, VERIFIED, id=third))["restorePoint"]["verification"]["state"] == "OK"

    # A week and more later every one is read again.
    server.clock.advance(8 * 24 * 3600)
    latest = (await runs(server, "weekly-check", 3))[0]
    assert any("Skipped 0 restore point(s) verified within 7 day(s); 3 to verify" in m for m in messages(latest))

    found = await metrics(server)
    assert found[("backups_schedule_info", (("kind", "verify"), ("schedule", "weekly-check")))] == 1
    assert ("backups_schedule_last_success_timestamp_seconds", (("enabled", "true"), ("schedule", "weekly-check"))) in (
        found
    )


async def _succeeded(server: InProcessServer, schedule_id: str) -> dict[str, Any] | None:
    schedule = (await execute(server, KIND, id=schedule_id))["schedule"]
    return schedule if schedule["lastSuccessAt"] else None


async def test_bad_verification_schedules_are_refused_and_nothing_changes(
    make_server: Callable[..., InProcessServer],
) -> None:
    server = make_server(**FAST).start()
    kept = await verification_schedule(server, "kept", readPercent=10, outdatedAfterDays=7)
    backup = await execute(server, CREATE, input={"name": "backup", "cron": "0 2 * * *", "retention": {"keepLast": 3}})
    assert backup["createSchedule"]["userErrors"] == []
    before = (await execute(server, LIST))["schedules"]
    bad = [
        ({"verification": {"readPercent": 0}}, "verification.readPercent"),
        ({"verification": {"readPercent": 101}}, "verification.readPercent"),
        ({"verification": {"outdatedAfterDays": -1}}, "verification.outdatedAfterDays"),
        ({"verification": {}, "retention": {"keepLast": 3}}, "retention"),
        ({"verification": {}, "afterChangeQuietSeconds": 60}, "afterChangeQuietSeconds"),
        ({"verification": {}, "labelTemplate": "{schedule}"}, "labelTemplate"),
    ]
    for change, field in bad:
        given = {"name": "fresh", "cron": "0 1 * * *", **change}
        created = (await execute(server, CREATE, input=given))["createSchedule"]
        assert created["schedule"] is None, change
        assert [(e["code"], e["field"]) for e in created["userErrors"]] == [("INVALID_INPUT", field)], change
        updated = (await execute(server, UPDATE, id=kept["id"], input=change))["updateSchedule"]
        assert updated["schedule"] is None, change
        assert [(e["code"], e["field"]) for e in updated["userErrors"]] == [("INVALID_INPUT", field)], change
    # A location it would copy to: refused as a verification schedule's (and as unknown here).
    copying = (await execute(server, UPDATE, id=kept["id"], input={"copyToLocations": ["offsite"]}))["updateSchedule"]
    assert {(e["code"], e["field"]) for e in copying["userErrors"]} == {("INVALID_INPUT", "copyToLocations")}
    assert any("verification schedule" in e["message"] for e in copying["userErrors"])
    # A backup schedule with retention cannot become a verification schedule as it is.
    turned = await execute(server, UPDATE, id=backup["createSchedule"]["schedule"]["id"], input={"verification": {}})
    refused = turned["updateSchedule"]
    assert [(e["code"], e["field"]) for e in refused["userErrors"]] == [("INVALID_INPUT", "retention")]
    assert "a verification schedule makes no restore points" in refused["userErrors"][0]["message"]
    # Several problems at once: each with its field.
    many = {"name": "fresh", "cron": "0 1 * * *", "verification": {"readPercent": 0, "outdatedAfterDays": -2}}
    both = (await execute(server, CREATE, input=many))["createSchedule"]["userErrors"]
    assert sorted(e["field"] for e in both) == ["verification.outdatedAfterDays", "verification.readPercent"]
    assert (await execute(server, LIST))["schedules"] == before

    # null turns it back into a backup schedule; left out keeps it.
    renamed = (await execute(server, UPDATE, id=kept["id"], input={"name": "kept-too"}))["updateSchedule"]
    assert renamed["userErrors"] == []
    assert (await execute(server, KIND, id=kept["id"]))["schedule"]["kind"] == "VERIFY"
    back = (await execute(server, UPDATE, id=kept["id"], input={"verification": None}))["updateSchedule"]
    assert back["userErrors"] == []
    turned_back = (await execute(server, KIND, id=kept["id"]))["schedule"]
    assert (turned_back["kind"], turned_back["verification"]) == ("BACKUP", None)


async def test_a_failed_verification_run_makes_the_health_critical_naming_the_schedule(
    make_server: Callable[..., InProcessServer],
) -> None:
    server = make_server(**FAST, BACKUPS_TEST_FAIL_AT="verify-read").start()
    await create_and_wait(server, "one")
    made = await verification_schedule(server, "nightly-check")
    started = (await execute(server, RUN, id=made["id"]))["runSchedule"]
    assert started["userErrors"] == [] and started["operation"]["kind"] == "VERIFY_BACKUPS"
    final = await wait_for_operation(server, started["operation"]["id"])
    assert final["status"] == "FAILED"
    health = (await execute(server, HEALTH))["backupHealth"]
    assert health["status"] == "CRITICAL"
    assert any(p.startswith("schedule 'nightly-check': its last run") for p in health["problems"]), health
    assert {"subjectKind": "SCHEDULE", "subjectId": made["id"], "operationId": final["id"]} in health["issues"]
    assert (await read_schedule(server, made["id"]))["lastOperation"]["id"] == final["id"]


async def test_an_apply_stops_the_verification_at_once_and_the_schedule_runs_again_after_it(
    make_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    site, config = site_config(tmp_path)
    many_files(site, 10, "apply")  # an apply slow enough to be asked beside
    server = make_server(
        **FAST, BACKUPS_CONFIG=str(config), BACKUPS_TEST_PAUSE_AT="verify-read", BACKUPS_TEST_ENTRY_DELAY="0.3"
    ).start()
    point = (await create_and_wait(server, "to apply"))["restorePoint"]["id"]
    made = await verification_schedule(server, "check")
    scheduled = (await execute(server, RUN, id=made["id"]))["runSchedule"]["operation"]
    await wait_for_log(server, scheduled["id"], "Test pause at step 'verify-read'")

    # One at a time: a second verification waits for the first.
    second = (await execute(server, VERIFY))["verifyBackups"]
    assert second["userErrors"] == []
    second_id = second["operation"]["id"]
    await wait_for_log(server, second_id, "Waiting for the verification under way to end")

    # An apply asked for now is accepted: both verifications stop for it within a second (from
    # the server's own times: the request seen, the verification ended).
    applying = await apply(server, point, safety=False)
    assert applying["userErrors"] == [], applying
    for op_id in (scheduled["id"], second_id):
        stopped = await wait_for_operation(server, op_id)
        assert stopped["status"] == "CANCELLED", stopped
        lines = (await execute(server, LOG, id=op_id))["operation"]["log"]
        asked = next(at(line["at"]) for line in lines if line["message"].startswith("An apply was asked for"))
        waited = at(stopped["finishedAt"]) - asked
        assert waited < timedelta(seconds=1), f"the apply waited {waited} for verification {op_id}"
        assert any("a verification never runs beside an apply" in line["message"] for line in lines)

    # Nothing verifies beside the apply.
    beside = (await execute(server, VERIFY))["verifyBackups"]
    assert [e["code"] for e in beside["userErrors"]] == ["BUSY"]
    applied = await wait_for_operation(server, applying["operation"]["id"], timeout=120)
    assert applied["status"] == "SUCCEEDED"

    # The stopped scheduled run runs again once the apply has ended, and says why.
    again = (await eventually(lambda: _two_runs(server)))[0]
    await wait_for_log(server, again["id"], "Test pause at step 'verify-read'")
    lines = await log_lines(server, again["id"])
    assert any("applying a restore point" in m and "waited" in m for m in lines), lines
    assert (await execute(server, CANCEL, id=again["id"]))["cancelOperation"]["userErrors"] == []


async def test_an_apply_goes_on_once_the_verification_stopped_without_waiting_for_its_final_write(
    make_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    site, config = site_config(tmp_path)
    many_files(site, 3, "apply")
    # Every operation's final write is held 4 s (a slow disk's fsync): the apply must not wait
    # for the stopped verification's.
    server = make_server(
        **FAST, BACKUPS_CONFIG=str(config), BACKUPS_TEST_PAUSE_AT="verify-read", BACKUPS_TEST_FINAL_WRITE_DELAY="4"
    ).start()
    point = (await create_and_wait(server, "to apply"))["restorePoint"]["id"]
    verifying = (await execute(server, VERIFY))["verifyBackups"]["operation"]["id"]
    await wait_for_log(server, verifying, "Test pause at step 'verify-read'")

    applying = await apply(server, point, safety=False)
    assert applying["userErrors"] == [], applying
    applied = await wait_for_operation(server, applying["operation"]["id"], timeout=120)
    assert applied["status"] == "SUCCEEDED", applied
    stopped = await wait_for_operation(server, verifying)
    assert stopped["status"] == "CANCELLED", stopped
    lines = (await execute(server, LOG, id=verifying))["operation"]["log"]
    asked = next(at(line["at"]) for line in lines if line["message"].startswith("An apply was asked for"))
    waited = at(applied["createdAt"]) - asked
    assert waited < timedelta(seconds=2), f"the apply was queued {waited} after it was asked for"


async def _two_runs(server: InProcessServer) -> list[dict[str, Any]] | None:
    ops = await operations_by(server, "check")
    return ops if len(ops) >= 2 else None


async def test_a_create_during_a_verification_starts_at_once_and_the_verification_pauses_for_it(
    make_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    site, config = site_config(tmp_path)
    many_files(site, 12, "slow")
    # One slot: a verification takes none, so a create never queues behind it.
    server = make_server(
        **FAST,
        BACKUPS_CONFIG=str(config),
        BACKUPS_TEST_ENTRY_DELAY="0.1",
        BACKUPS_MAX_CONCURRENT_OPERATIONS="1",
    ).start()
    await create_and_wait(server, "base")
    made = await verification_schedule(server, "slow-check")
    run = (await execute(server, RUN, id=made["id"]))["runSchedule"]["operation"]
    await wait_for_log(server, run["id"], "Verifying 1 restore point(s)")

    create = await create_restore_point(server, "while verifying")
    created = await wait_for_operation(server, create["id"], timeout=120)
    assert created["status"] == "SUCCEEDED"
    waited = at(created["startedAt"]) - at(created["createdAt"])
    assert waited < timedelta(seconds=1), f"the create waited {waited} to start"

    verified = await wait_for_operation(server, run["id"], timeout=120)
    assert verified["status"] == "SUCCEEDED", verified
    lines = await log_lines(server, run["id"])
    paused = next(i for i, m in enumerate(lines) if m.startswith("Paused: a restore point is being created"))
    going = next(i for i, m in enumerate(lines) if m.startswith("Going on: the restore point was made"))
    assert paused < going


async def test_the_manuals_verification_schedule_examples_work_as_written(
    make_server: Callable[..., InProcessServer],
) -> None:
    server = make_server(**FAST).start()
    examples = [
        block
        for page in (DOCS / "configuration" / "schedules.md", DOCS / "verification.md")
        for block in blocks(page)
        if block.lang == "graphql" and "verification:" in block.text
    ]
    assert len(examples) == 2, [block.where() for block in examples]
    for block in examples:
        made = (await execute(server, block.text))["createSchedule"]
        assert made["userErrors"] == [], block.where()
        assert made["schedule"]["kind"] == "VERIFY" and made["schedule"]["nextRunAt"], block.where()
        run = (await execute(server, RUN, id=made["schedule"]["id"]))["runSchedule"]["operation"]
        assert (await wait_for_operation(server, run["id"]))["status"] == "SUCCEEDED", block.where()
