"""restorePoints filters: origin, scheduleId, pinned, createdAfter/createdBefore and a label/note
search, each still keyset-paginated."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from tests.support.api import create_and_wait, execute, execute_errors, labels_page_by_page, wait_for_operation
from tests.support.in_process import InProcessServer
from tests.support.schedules import RUN, create_schedule

LIST = """query($first: Int, $after: String, $origin: [RestorePointOrigin!], $scheduleId: ID, $pinned: Boolean,
        $createdAfter: DateTime, $createdBefore: DateTime, $search: String) {
    restorePoints(first: $first, after: $after, origin: $origin, scheduleId: $scheduleId, pinned: $pinned,
                  createdAfter: $createdAfter, createdBefore: $createdBefore, search: $search) {
        totalCount pageInfo { hasNextPage endCursor } nodes { id label createdAt } } }"""
NOTE = "mutation($id: ID!, $note: String, $pinned: Boolean) { updateRestorePoint(id: $id, note: $note, pinned: $pinned) { userErrors { code } } }"


async def _all(server: InProcessServer, **narrow: Any) -> list[str]:
    return await labels_page_by_page(server, LIST, **narrow)


async def test_each_filter_narrows_the_paginated_list(make_server: Callable[..., InProcessServer]) -> None:
    server = make_server().start()
    moments = {}
    for label in ("alpha 100%", "beta_one", "gamma", "delta"):
        point = (await create_and_wait(server, label))["restorePoint"]["id"]
        moments[label] = datetime.fromtimestamp(server.clock.time(), UTC)
        server.clock.advance(3600)
        if label == "gamma":
            await execute(server, NOTE, id=point, note="Before the UPGRADE", pinned=True)
    schedule = await create_schedule(server, name="filtered", cron="0 0 1 1 *", labelTemplate="auto {date}")
    for _ in range(3):
        op = (await execute(server, RUN, id=schedule["id"]))["runSchedule"]["operation"]
        assert (await wait_for_operation(server, op["id"]))["status"] == "SUCCEEDED"
        server.clock.advance(3600)

    assert await _all(server, origin=["MANUAL"]) == ["delta", "gamma", "beta_one", "alpha 100%"]
    assert len(await _all(server, origin=["SCHEDULED"])) == 3
    assert len(await _all(server, origin=["SCHEDULED", "MANUAL"])) == 7
    assert await _all(server, origin=["IMPORTED", "SAFETY"]) == []
    assert len(await _all(server, scheduleId=schedule["id"])) == 3
    assert await _all(server, scheduleId="sch_000000000000000000000000") == []
    assert await _all(server, scheduleId="not an id\x00") == []
    assert await _all(server, pinned=True) == ["gamma"]
    assert len(await _all(server, pinned=False)) == 6
    assert await _all(server, search="upgrade") == ["gamma"]  # in the note, any case
    assert await _all(server, search="100%") == ["alpha 100%"]  # % is a character, not a wildcard
    assert await _all(server, search="gamm_") == []  # and so is _
    assert await _all(server, search="beta_") == ["beta_one"]
    after_beta = moments["beta_one"].isoformat()
    before_gamma_end = moments["gamma"].isoformat()  # just after gamma was made, an hour before delta
    assert await _all(server, origin=["MANUAL"], createdAfter=after_beta) == ["delta", "gamma"]
    assert await _all(server, createdAfter=moments["alpha 100%"].isoformat(), createdBefore=before_gamma_end) == [
        "gamma",
        "beta_one",
    ]
    assert await _all(server, origin=["MANUAL"], pinned=False, search="A") == ["delta", "beta_one", "alpha 100%"]

    # A cursor and createdBefore together: whichever bound is tighter decides where the page
    # starts (the server writes only that one), with a cursor from another listing either way.
    async def after(label_count: int, **narrow: Any) -> list[str]:
        cursor = (await execute(server, LIST, first=label_count, origin=["MANUAL"]))["restorePoints"]["pageInfo"]
        page = await execute(server, LIST, first=10, after=cursor["endCursor"], **narrow)
        return [node["label"] for node in page["restorePoints"]["nodes"]]

    assert await after(1, createdBefore=before_gamma_end) == ["gamma", "beta_one", "alpha 100%"]  # the bound
    assert await after(3, createdBefore=before_gamma_end) == ["alpha 100%"]  # the cursor
    assert await after(1, origin=["MANUAL"]) == ["gamma", "beta_one", "alpha 100%"]


async def test_bad_filters_are_refused_with_a_clear_error(make_server: Callable[..., InProcessServer]) -> None:
    server = make_server().start()
    await create_and_wait(server, "only one")
    for narrow, field_text in (
        ({"search": "bad\x00search"}, "search"),
        ({"search": "x" * 201}, "search"),
        ({"createdAfter": "2026-01-01T00:00:00"}, "createdAfter"),
        ({"createdBefore": "2026-01-01T00:00:00"}, "createdBefore"),
    ):
        errors = await execute_errors(server, LIST, **narrow)
        assert errors[0]["extensions"]["code"] == "INVALID_INPUT", narrow
        assert field_text in errors[0]["message"] or field_text in str(errors[0]), errors
    assert await _all(server) == ["only one"]
