"""A list of names an argument takes names each one once, by the same rule everywhere
(server/model/names.py each_once): applyRestorePoint(sources:) and applyPreview(sources:) refuse a
source given twice as createSchedule(copyToLocations:) refuses a location given twice."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.api.test_partial_apply import APPLY, PREVIEW_SUMMARY
from tests.support.api import create_and_wait, execute, execute_errors
from tests.support.folder_source import folder_server
from tests.support.in_process import InProcessServer

OPERATIONS = "{ operations(first: 100) { totalCount } }"


async def test_a_source_named_twice_is_refused_by_apply_and_its_preview(
    make_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    server, _, _ = folder_server(make_server, tmp_path, database=True)
    point = (await create_and_wait(server, "before"))["restorePoint"]
    before = (await execute(server, OPERATIONS))["operations"]["totalCount"]
    for twice in (["site", "site"], ["settings", "site", "settings"]):
        applied = (await execute(server, APPLY, id=point["id"], confirm=point["id"], sources=twice))[
            "applyRestorePoint"
        ]
        assert applied["operation"] is None, twice
        [error] = applied["userErrors"]
        assert (error["code"], error["field"]) == ("INVALID_INPUT", "sources")
        assert f"source {twice[0]!r} is named twice" in error["message"]

        [refused] = await execute_errors(server, PREVIEW_SUMMARY, id=point["id"], sources=twice)
        assert refused["extensions"]["code"] == "INVALID_INPUT"
        assert f"source {twice[0]!r} is named twice" in refused["message"]
    assert (await execute(server, OPERATIONS))["operations"]["totalCount"] == before, "nothing started"
    # Each once is as before.
    once = await execute(server, PREVIEW_SUMMARY, id=point["id"], sources=["site", "settings"])
    assert once["applyPreview"]["summary"]["changed"] == 0
