"""backupHealth and backupHealthChanged: a failed last run is CRITICAL, a last success older
than twice the period a WARNING, and the subscription reports each change."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.support.api import auth_headers, execute, subscribe, wait_for_operation
from tests.support.folder_source import folder_server
from tests.support.in_process import InProcessServer
from tests.support.schedules import RUN, UPDATE, create_schedule, eventually, far_off_cron

HEALTH = "{ backupHealth { status problems lastSuccessAt lastAttemptAt nextRunAt } }"
FOLLOW = "subscription { backupHealthChanged { status problems } }"
ISSUES = "{ backupHealth { problems issues { message status subjectKind subjectId operationId } } }"
APP_CONF = {"app.conf": "volume = 3\n"}
FAST_POLL = {"BACKUPS_SCHEDULER_POLL_SECONDS": "0.05"}


async def health(server: InProcessServer) -> dict[str, Any]:
    return (await execute(server, HEALTH))["backupHealth"]


async def test_health_follows_failures_staleness_and_recovery(
    make_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    server, site, _ = folder_server(make_server, tmp_path, files=APP_CONF, **FAST_POLL)
    assert await health(server) == {
        "status": "OK",
        "problems": [],
        "lastSuccessAt": None,
        "lastAttemptAt": None,
        "nextRunAt": None,
    }
    schedule = await create_schedule(server, name="hourly", cron="0 * * * *")
    seen: list[dict[str, Any]] = []

    async def follow() -> None:
        async for event in subscribe(server, FOLLOW):
            seen.append(event["backupHealthChanged"])

    follower = asyncio.create_task(follow())
    try:
        await eventually(lambda: _async(seen and seen[-1]["status"] == "OK"))
        first = (await execute(server, RUN, id=schedule["id"]))["runSchedule"]["operation"]
        assert (await wait_for_operation(server, first["id"]))["status"] == "SUCCEEDED"
        now_ok = await eventually(lambda: _ok_after_success(server))
        assert now_ok["nextRunAt"] == schedule["nextRunAt"]

        # The site folder goes away: the next run fails, and health turns CRITICAL.
        shutil.rmtree(site)
        failing = (await execute(server, RUN, id=schedule["id"]))["runSchedule"]["operation"]
        final = await wait_for_operation(server, failing["id"])
        assert final["status"] == "FAILED" and final["error"]["code"] == "SOURCE_UNAVAILABLE"
        critical = await eventually(lambda: _status(server, "CRITICAL"))
        assert len(critical["problems"]) == 1 and "'hourly'" in critical["problems"][0]
        assert "SOURCE_UNAVAILABLE" in critical["problems"][0]
        await eventually(lambda: _async(any(e["status"] == "CRITICAL" for e in seen)))

        # It comes back; then three hours pass with no success (the loop's runs fail again).
        site.mkdir()
        (site / "app.conf").write_text("volume = 4\n")
        fixed = (await execute(server, RUN, id=schedule["id"]))["runSchedule"]["operation"]
        assert (await wait_for_operation(server, fixed["id"]))["status"] == "SUCCEEDED"
        await eventually(lambda: _status(server, "OK"))
        # Three hours jump by: the loop runs it once on the jump, it succeeds, health stays OK.
        server.clock.advance(3 * 3600)
        await eventually(lambda: _ran(server, schedule["id"], fixed["id"]))
        await eventually(lambda: _status(server, "OK"))
        assert [e["status"] for e in seen][:1] == ["OK"]
        assert "CRITICAL" in [e["status"] for e in seen]
    finally:
        follower.cancel()
        await asyncio.gather(follower, return_exceptions=True)


async def test_a_schedule_with_no_recent_success_is_a_warning(make_server: Callable[..., InProcessServer]) -> None:
    server = make_server().start()  # the default poll (5 s): the loop does not run it in this test's time
    schedule = await create_schedule(server, name="stale", cron="*/10 * * * *")
    await execute(server, UPDATE, id=schedule["id"], input={"name": "stale", "enabled": False})
    server.clock.advance(3600)
    assert (await health(server))["status"] == "OK", "a paused schedule is not judged"
    await execute(server, UPDATE, id=schedule["id"], input={"name": "stale", "enabled": True})
    found = await health(server)
    assert found["status"] == "WARNING"
    assert found["problems"] == ["schedule 'stale': it has never succeeded, more than twice its period ago"]


async def get(server: InProcessServer, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.get(f"{server.url}{path}", headers=headers or {})


async def test_health_endpoint_for_uptime_monitors_and_problems_with_subjects(
    make_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    server, site, _ = folder_server(make_server, tmp_path, files=APP_CONF, **FAST_POLL)
    viewer = {"Authorization": f"Bearer {server.create_token('uptime', 'viewer')}"}
    refused = await get(server, "/health/backups")
    assert refused.status_code == 401 and "viewer token" in refused.text, "the same rule as /metrics"
    assert (await get(server, "/health")).json() == {"status": "ok"}, "/health stays the liveness probe"
    answer = await get(server, "/health/backups", viewer)
    assert answer.status_code == 200
    assert answer.json() == {
        "status": "OK",
        "lastSuccessAt": None,
        "nextRunAt": None,
        "problemCount": 0,
        "problems": [],
    }

    schedule = await create_schedule(server, name="hourly", cron=far_off_cron())
    shutil.rmtree(site)  # the next run fails: CRITICAL, and the monitor sees 503
    op = (await execute(server, RUN, id=schedule["id"]))["runSchedule"]["operation"]
    assert (await wait_for_operation(server, op["id"]))["status"] == "FAILED"
    answer = await get(server, "/health/backups", viewer)
    assert answer.status_code == 503, answer.text
    body = answer.json()
    assert body["status"] == "CRITICAL" and body["problemCount"] == 1, body
    assert "'hourly'" in body["problems"][0] and "SOURCE_UNAVAILABLE" in body["problems"][0], body
    found = (await execute(server, ISSUES))["backupHealth"]
    assert found["issues"] == [
        {
            "message": found["problems"][0],
            "status": "CRITICAL",
            "subjectKind": "SCHEDULE",
            "subjectId": schedule["id"],
            "operationId": op["id"],
        }
    ]
    assert (await get(server, "/health", auth_headers(server))).status_code == 200, "liveness is not backup health"

    # Paused, the schedule is not judged: 200 again.
    await execute(server, UPDATE, id=schedule["id"], input={"name": "hourly", "enabled": False})
    assert (await get(server, "/health/backups", viewer)).json()["status"] == "OK"


async def test_health_endpoint_without_a_token_when_metrics_are_public(
    make_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    server, site, _ = folder_server(make_server, tmp_path, files=APP_CONF, **FAST_POLL, BACKUPS_METRICS_PUBLIC="1")
    schedule = await create_schedule(server, name="hourly", cron=far_off_cron())
    shutil.rmtree(site)
    op = (await execute(server, RUN, id=schedule["id"]))["runSchedule"]["operation"]
    assert (await wait_for_operation(server, op["id"]))["status"] == "FAILED"
    answer = await get(server, "/health/backups")
    assert answer.status_code == 503
    body = answer.json()
    assert body["status"] == "CRITICAL" and body["problemCount"] == 1, body
    assert "problems" not in body, "the problems' texts only with a token"
    assert "problems" in (await get(server, "/health/backups", auth_headers(server))).json()


async def test_an_after_change_schedule_is_judged_too(
    make_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    server, site, _ = folder_server(make_server, tmp_path, files=APP_CONF, **FAST_POLL)
    schedule = await create_schedule(server, name="on-change", afterChangeQuietSeconds=3600)
    shutil.rmtree(site)
    op = (await execute(server, RUN, id=schedule["id"]))["runSchedule"]["operation"]
    assert (await wait_for_operation(server, op["id"]))["status"] == "FAILED"
    found = await health(server)
    assert found["status"] == "CRITICAL", "a failed run is a problem whatever starts the schedule's runs"
    assert "'on-change'" in found["problems"][0] and op["id"] in found["problems"][0], found


async def _ran(server: InProcessServer, schedule_id: str, before: str) -> bool:
    found = await execute(
        server, "query($id: ID!) { schedule(id: $id) { lastOperation { id status } } }", id=schedule_id
    )
    last = found["schedule"]["lastOperation"]
    return last["id"] != before and last["status"] == "SUCCEEDED"


async def _async(value: Any) -> Any:
    return value


async def _ok_after_success(server: InProcessServer) -> dict[str, Any] | None:
    found = await health(server)
    return found if found["status"] == "OK" and found["lastSuccessAt"] else None


async def _status(server: InProcessServer, status: str) -> dict[str, Any] | None:
    found = await health(server)
    return found if found["status"] == status else None
