"""/metrics in Prometheus text format: a viewer token needed unless BACKUPS_METRICS_PUBLIC=1,
values computed from stored history so a restart does not reset them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.api import auth_headers, execute, wait_for_operation
from tests.support.in_process import InProcessServer
from tests.support.schedules import PRUNE, RUN, UPDATE, create_schedule, eventually, far_off_cron, read_schedule

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


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
        found[("backups_schedule_next_run_timestamp_seconds", (("schedule", "nightly"),))]
        == datetime.fromisoformat(stored["nextRunAt"]).timestamp()
    )
    assert ("backups_schedule_last_success_timestamp_seconds", (("schedule", "nightly"),)) in found

    assert server.stop() == 0
    server.start()
    after = samples((await scrape(server, viewer)).text)
    for key in (
        ("backups_operations_total", (("kind", "CREATE_RESTORE_POINT"), ("status", "SUCCEEDED"))),
        ("backups_retention_deletions_total", ()),
        ("backups_restore_points", (("origin", "SCHEDULED"),)),
        ("backups_schedule_last_success_timestamp_seconds", (("schedule", "nightly"),)),
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
