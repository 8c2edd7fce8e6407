"""/metrics in Prometheus text format: a viewer token needed unless BACKUPS_METRICS_PUBLIC=1,
values computed from stored history so a restart does not reset them."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.api import auth_headers, create_and_wait, execute, update_settings, wait_for_operation
from tests.support.in_process import InProcessServer
from tests.support.schedules import PRUNE, RUN, UPDATE, create_schedule, eventually, far_off_cron, read_schedule

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
HEALTH = "{ backupHealth { status lastSuccessAt } }"
ISSUES = "{ backupHealth { issues { status subjectKind subjectId operationId } } }"
POINT = "query($id: ID!) { restorePoint(id: $id) { id origin createdAt } }"
EXPORT = "mutation($id: ID!) { exportRestorePoint(restorePointId: $id) { operation { id } } }"
COPY = "query($id: ID!) { operation(id: $id) { localCopy { id restorePointId } } }"


async def scrape(server: InProcessServer, headers: dict[str, str] | None = None) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.get(f"{server.url}/metrics", headers=headers or {})


def samples(text: str) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_metrics_count_stored_history_and_survive_a_restart(make_server: Callable[..., InProcessServer]) -> None:
    server = make_server(BACKUPS_SCHEDULER_POLL_SECONDS="0.05").start()
    schedule = await create_schedule(server, name="nightly", cron=far_off_cron())
    for _ in range(2):
        op = (await execute(server, RUN, id=schedule["id"]))["runSchedule"]["operation"]
        assert (await wait_for_operation(server, op["id"]))["status"] == "SUCCEEDED"
        await eventually(lambda op_id=op["id"]: _succeeded(server, schedule["id"], op_id))
    await execute(server, UPDATE, id=schedule["id"], input={"name": "nightly", "retention": {"keepLast": 1}})
    prune = (await execute(server, PRUNE, id=schedule["id"]))["pruneSchedule"]["operation"]
    assert (await wait_for_operation(server, prune["id"]))["status"] == "SUCCEEDED"

    refused = await scrape(server)
    assert refused.status_code == 401 and "viewer token" in refused.text
    assert (await scrape(server, {"Authorization": "Bearer not-a-token"})).status_code == 401
    viewer = {"Authorization": f"Bearer {server.create_token('metrics-viewer', 'viewer')}"}
    response = await scrape(server, viewer)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    found = samples(response.text)
    assert found[("backups_operations_total", (("kind", "CREATE_RESTORE_POINT"), ("status", "SUCCEEDED")))] == 2
    assert found[("backups_operations_total", (("kind", "PRUNE_RESTORE_POINTS"), ("status", "SUCCEEDED")))] == 1
    assert found[("backups_retention_deletions_total", ())] == 1
    assert found[("backups_restore_points", (("origin", "SCHEDULED"),))] == 1
    assert found[("backups_operation_duration_seconds_count", (("kind", "CREATE_RESTORE_POINT"),))] == 2
    everything = (("kind", "CREATE_RESTORE_POINT"), ("le", "+Inf"))
    assert found[("backups_operation_duration_seconds_bucket", everything)] == 2
    # The sum is each operation's finishedAt - startedAt, as the API shows them, added up.
    timed = await execute(
        server, "{ operations(kind: [CREATE_RESTORE_POINT], first: 10) { edges { node { startedAt finishedAt } } } }"
    )
    spans = [
        datetime.fromisoformat(e["node"]["finishedAt"]) - datetime.fromisoformat(e["node"]["startedAt"])
        for e in timed["operations"]["edges"]
    ]
    assert len(spans) == 2 and all(span.total_seconds() > 0 for span in spans)
    assert found[("backups_operation_duration_seconds_sum", (("kind", "CREATE_RESTORE_POINT"),))] == pytest.approx(
        sum(span.total_seconds() for span in spans), abs=0.01
    )
    stored = await read_schedule(server, schedule["id"])
    assert (
        found[("backups_schedule_next_run_timestamp_seconds", (("enabled", "true"), ("schedule", "nightly")))]
        == datetime.fromisoformat(stored["nextRunAt"]).timestamp()
    )
    assert ("backups_schedule_last_success_timestamp_seconds", (("enabled", "true"), ("schedule", "nightly"))) in found

    assert server.stop() == 0
    server.start()
    after = samples((await scrape(server, viewer)).text)
    for key in (
        ("backups_operations_total", (("kind", "CREATE_RESTORE_POINT"), ("status", "SUCCEEDED"))),
        ("backups_retention_deletions_total", ()),
        ("backups_restore_points", (("origin", "SCHEDULED"),)),
        ("backups_schedule_last_success_timestamp_seconds", (("enabled", "true"), ("schedule", "nightly"))),
    ):
        assert after[key] == found[key], key


async def test_metrics_can_be_public(make_server: Callable[..., InProcessServer]) -> None:
    server = make_server(BACKUPS_METRICS_PUBLIC="1").start()
    response = await scrape(server)
    assert response.status_code == 200
    assert ("backups_retention_deletions_total", ()) in samples(response.text)
    assert (await scrape(server, auth_headers(server))).status_code == 200


async def _succeeded(server: InProcessServer, schedule_id: str, op_id: str) -> bool:
    found = await read_schedule(server, schedule_id)
    return bool(found and found["lastOperation"]["id"] == op_id and found["lastSuccessAt"])


def monitored_server(make_server: Callable[..., InProcessServer], tmp_path: Path, **env: str) -> InProcessServer:
    """A server with a folder source and two folder locations, "share" and "usb"."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "app.conf").write_text("volume = 3\n")
    for name in ("share", "usb"):
        (tmp_path / name).mkdir()
    config = tmp_path / "backups.toml"
    config.write_text(
        f'[[sources]]\nname = "site"\nkind = "directory"\npath = "{site}"\n\n'
        + "".join(
            f'[[locations]]\nname = "{name}"\nkind = "folder"\npath = "{tmp_path / name}"\n\n'
            for name in ("share", "usb")
        )
    )
    return make_server(BACKUPS_CONFIG=str(config), BACKUPS_SCHEDULER_POLL_SECONDS="0.05", **env).start()


async def run_to_end(server: InProcessServer, schedule_id: str) -> dict[str, Any]:
    op = (await execute(server, RUN, id=schedule_id))["runSchedule"]["operation"]
    return await wait_for_operation(server, op["id"])


async def test_metrics_tell_health_copies_and_the_newest_success(
    make_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    server = monitored_server(make_server, tmp_path, BACKUPS_METRICS_PUBLIC="1")
    await create_schedule(server, name="never-ran", cron=far_off_cron())
    await create_schedule(server, name="paused", cron=far_off_cron(), enabled=False)
    nightly = await create_schedule(server, name="nightly", cron=far_off_cron(), copyToLocations=["share", "usb"])
    found = samples((await scrape(server)).text)
    assert found[("backups_health_status", ())] == 0
    assert found[("backups_last_success_timestamp_seconds", ())] == 0, "no backup yet: 0, so the alert fires"
    for name, enabled in (("never-ran", "true"), ("paused", "false"), ("nightly", "true")):
        key = (("enabled", enabled), ("schedule", name))
        assert found[("backups_schedule_last_success_timestamp_seconds", key)] == 0, name
        assert found[("backups_schedule_last_attempt_timestamp_seconds", key)] == 0, name
    assert found[("backups_location_copy_ok", (("location", "share"),))] == 1, "no copy meant for it yet"

    # The usb disk is unplugged: the run succeeds, its copy there does not arrive.
    shutil.rmtree(tmp_path / "usb")
    first = await run_to_end(server, nightly["id"])
    assert first["status"] == "SUCCEEDED"
    await eventually(lambda: _succeeded(server, nightly["id"], first["id"]))
    found = samples((await scrape(server)).text)
    assert found[("backups_health_status", ())] == 1
    assert found[("backups_location_copy_ok", (("location", "share"),))] == 1
    assert found[("backups_location_copy_ok", (("location", "usb"),))] == 0
    issues = (await execute(server, ISSUES))["backupHealth"]["issues"]
    assert issues == [{"status": "WARNING", "subjectKind": "LOCATION", "subjectId": "usb", "operationId": first["id"]}]
    ran = await read_schedule(server, nightly["id"])
    assert found[
        ("backups_schedule_last_success_timestamp_seconds", (("enabled", "true"), ("schedule", "nightly")))
    ] == (datetime.fromisoformat(ran["lastSuccessAt"]).timestamp())

    # A restore point made by hand (a script, CI) is a success as well, for backupHealth and /metrics.
    server.clock.advance(60)
    manual = await create_and_wait(server, "by hand")
    point = (await execute(server, POINT, id=manual["restorePoint"]["id"]))["restorePoint"]
    assert (await execute(server, HEALTH))["backupHealth"]["lastSuccessAt"] == point["createdAt"]
    found = samples((await scrape(server)).text)
    assert (
        found[("backups_last_success_timestamp_seconds", ())] == datetime.fromisoformat(point["createdAt"]).timestamp()
    )

    # The disk is back: the next run's copy arrives there, health is OK again.
    (tmp_path / "usb").mkdir()
    assert (await run_to_end(server, nightly["id"]))["status"] == "SUCCEEDED"
    found = samples((await scrape(server)).text)
    assert found[("backups_location_copy_ok", (("location", "usb"),))] == 1
    assert found[("backups_health_status", ())] == 0

    # The source is gone: the run fails, health is CRITICAL; the copies keep their last word.
    shutil.rmtree(tmp_path / "site")
    assert (await run_to_end(server, nightly["id"]))["status"] == "FAILED"
    found = samples((await scrape(server)).text)
    assert found[("backups_health_status", ())] == 2
    assert found[("backups_location_copy_ok", (("location", "usb"),))] == 1
    assert (
        found[("backups_schedule_last_success_timestamp_seconds", (("enabled", "false"), ("schedule", "paused")))] == 0
    )


async def test_imported_restore_points_are_not_a_fresh_success(make_server: Callable[..., InProcessServer]) -> None:
    server = make_server(BACKUPS_METRICS_PUBLIC="1").start()
    first = await create_and_wait(server, "first")
    server.clock.advance(60)
    await update_settings(server, "setup", {"siteName": "Hall 2"})
    second = await create_and_wait(server, "second")
    exported = (await execute(server, EXPORT, id=second["restorePoint"]["id"]))["exportRestorePoint"]["operation"]
    assert (await wait_for_operation(server, exported["id"]))["status"] == "SUCCEEDED"
    copy = (await execute(server, COPY, id=exported["id"]))["operation"]["localCopy"]
    await execute(server, "mutation($id: ID!) { deleteRestorePoint(id: $id) { deletedId } }", id=copy["restorePointId"])
    started = await execute(
        server, "mutation($id: ID!) { importLocalCopy(localCopyId: $id) { operation { id } } }", id=copy["id"]
    )
    imported = await wait_for_operation(server, started["importLocalCopy"]["operation"]["id"])
    assert imported["status"] == "SUCCEEDED", imported
    back = (await execute(server, POINT, id=imported["restorePoint"]["id"]))["restorePoint"]
    assert back["origin"] == "IMPORTED"
    kept = (await execute(server, POINT, id=first["restorePoint"]["id"]))["restorePoint"]
    assert back["createdAt"] > kept["createdAt"]
    assert (await execute(server, HEALTH))["backupHealth"]["lastSuccessAt"] == kept["createdAt"]
    found = samples((await scrape(server)).text)
    assert (
        found[("backups_last_success_timestamp_seconds", ())] == datetime.fromisoformat(kept["createdAt"]).timestamp()
    )


async def test_metrics_pass_promtool_check(make_server: Callable[..., InProcessServer], tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI needs promtool (Debian's package prometheus), and it is missing")
        pytest.skip("promtool is missing (Debian's package prometheus)")
    server = monitored_server(make_server, tmp_path)
    schedule = await create_schedule(server, name="nightly", cron=far_off_cron(), copyToLocations=["share"])
    await create_schedule(server, name="paused", cron=far_off_cron(), enabled=False)
    await run_to_end(server, schedule["id"])
    await create_and_wait(server, "by hand")
    viewer = {"Authorization": f"Bearer {server.create_token('metrics-viewer', 'viewer')}"}
    text = (await scrape(server, viewer)).text
    checked = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    said = checked.stdout + checked.stderr
    assert checked.returncode == 0 and said == "", f"promtool check metrics says:\n{said}\non:\n{text}"
    # Every kind of family is there, so the check covers each of them.
    for name in (
        "backups_operations_total",
        "backups_operation_duration_seconds_bucket",
        "backups_health_status",
        "backups_location_copy_ok",
        "backups_build_info",
        "backups_verification_last_timestamp_seconds",
        "backups_verification_damaged",
        "backups_verification_repaired_total",
        "backups_verification_read_bytes_total",
        "process_cpu_seconds_total",
    ):
        assert f"\n{name}" in text, name


async def test_failures_are_counted_from_zero_so_the_first_one_is_an_increase(
    make_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    server = monitored_server(make_server, tmp_path, BACKUPS_METRICS_PUBLIC="1")
    found = samples((await scrape(server)).text)
    # Before any failure (before any operation at all) each kind's failure counter says 0.
    for kind in ("CREATE_RESTORE_POINT", "EXPORT_RESTORE_POINT", "APPLY_RESTORE_POINT", "UPLOAD_TO_LOCATION"):
        assert found[("backups_operations_total", (("kind", kind), ("status", "FAILED")))] == 0, kind
    nightly = await create_schedule(server, name="nightly", cron=far_off_cron())
    shutil.rmtree(tmp_path / "site")
    assert (await run_to_end(server, nightly["id"]))["status"] == "FAILED"
    found = samples((await scrape(server)).text)
    assert found[("backups_operations_total", (("kind", "CREATE_RESTORE_POINT"), ("status", "FAILED")))] == 1
    assert ("backups_operations_total", (("kind", "CREATE_RESTORE_POINT"), ("status", "SUCCEEDED"))) not in found
