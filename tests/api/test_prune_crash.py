"""SIGKILL during a retention run (PRUNE_RESTORE_POINTS): no restore point is left half
deleted, and the blobs a deleted one left are collected at the next start. The prune is held
right after a record's delete, before its blobs are freed (BACKUPS_TEST_PAUSE_AT=prune-deleted),
and the server killed there."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.api import execute, update_settings, wait_for_operation
from tests.support.apply import wait_for_pause
from tests.support.blobs import stored_blobs
from tests.support.schedules import PRUNE, RUN, UPDATE, create_schedule
from tests.support.server_process import ServerProcess

POINTS = "{ restorePoints(first: 100) { nodes { id entries { sha256 } } } }"
OPERATION = "query($id: ID!) { operation(id: $id) { status log { message } } }"


async def _stored(proc: ServerProcess) -> dict[str, set[str]]:
    """Every restore point the API lists, with the digests its manifest names."""
    nodes = (await execute(proc, POINTS))["restorePoints"]["nodes"]
    return {n["id"]: {e["sha256"] for e in n["entries"] if e["sha256"]} for n in nodes}


@pytest.mark.slow
async def test_a_prune_killed_mid_way_leaves_whole_restore_points_and_its_blobs_are_collected(
    make_server_process: Callable[..., ServerProcess],
) -> None:
    proc = make_server_process(BACKUPS_TEST_PAUSE_AT="prune-deleted").start()
    schedule = await create_schedule(proc, name="tidy", cron="0 0 1 1 *")
    points = []
    for volume in range(3):  # each with a settings module of its own: blobs only it uses
        assert (await update_settings(proc, "audio", {"masterVolume": volume, "tag": "x" * 100}))["userErrors"] == []
        run = (await execute(proc, RUN, id=schedule["id"]))["runSchedule"]["operation"]
        final = await wait_for_operation(proc, run["id"])
        assert final["status"] == "SUCCEEDED"
        points.append(final["restorePoint"]["id"])
    before = await _stored(proc)
    assert set(before) == set(points)
    for point in points:
        assert before[point] - set().union(*(d for p, d in before.items() if p != point)), "blobs of its own"

    updated = await execute(proc, UPDATE, id=schedule["id"], input={"name": "tidy", "retention": {"keepLast": 1}})
    assert updated["updateSchedule"]["userErrors"] == []
    prune = (await execute(proc, PRUNE, id=schedule["id"]))["pruneSchedule"]["operation"]
    await wait_for_pause(proc, prune["id"])
    held = await _stored(proc)
    (gone,) = set(before) - set(held)  # the first deletion is committed: gone as a whole
    assert gone in points[:2] and points[2] in held
    only_gone = before[gone] - set().union(*held.values())
    assert only_gone and only_gone <= stored_blobs(proc), "its blobs are not freed yet"

    await asyncio.to_thread(proc.kill)
    proc.env_overrides.pop("BACKUPS_TEST_PAUSE_AT")
    await asyncio.to_thread(proc.start)

    after = await _stored(proc)
    assert after == held, "no restore point half deleted: the one not reached is whole"
    referenced = set().union(*after.values())
    assert stored_blobs(proc) == referenced, "the blobs the deleted one left were collected at start"
    assert (await execute(proc, OPERATION, id=prune["id"]))["operation"]["status"] != "RUNNING"

    again = (await execute(proc, PRUNE, id=schedule["id"]))["pruneSchedule"]["operation"]
    final: dict[str, Any] = await wait_for_operation(proc, again["id"])
    assert final["status"] == "SUCCEEDED"
    assert set(await _stored(proc)) == {points[2]}
    assert stored_blobs(proc) == (await _stored(proc))[points[2]]
