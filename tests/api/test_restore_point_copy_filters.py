"""A scheduled run's copies in the API (Operation.copiesMade / copiesFailed, as the README
promises), and restorePoints narrowed by who made them (`createdBy`) and by a location that
holds a copy of them (`hasCopyAt`), each keyset-paginated; an unknown location is NOT_FOUND
and one that cannot be listed LOCATION_UNAVAILABLE, never an empty list."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.api import Target, create_and_wait, execute, execute_errors, labels_page_by_page, wait_for_operation
from tests.support.in_process import InProcessServer
from tests.support.schedules import RUN, create_schedule, far_off_cron

LIST = """query($first: Int, $after: String, $createdBy: String, $hasCopyAt: String) {
    restorePoints(first: $first, after: $after, createdBy: $createdBy, hasCopyAt: $hasCopyAt) {
        totalCount pageInfo { hasNextPage endCursor } nodes { id label createdBy } } }"""
COPIES = """query($id: ID!) { operation(id: $id) { status
    copiesMade { location fileName } copiesFailed { location problem } } }"""
EXPORT = """mutation($id: ID!) { exportRestorePoint(restorePointId: $id) {
    operation { id } userErrors { code message field } } }"""
UPLOAD = """mutation($c: ID!, $l: String!) { uploadToLocation(localCopyId: $c, location: $l) {
    operation { id } userErrors { code message field } } }"""
SHARE_FILES = """{ locations { name copies { fileName restorePointId } } }"""


def _config(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    (site / "page.html").write_text("<h1>été</h1>")
    share = tmp_path / "share"
    share.mkdir()
    config = tmp_path / "backups.toml"
    config.write_text(
        f"""
[[sources]]
name = "site"
kind = "directory"
path = "{site}"

[[locations]]
name = "share"
kind = "folder"
path = "{share}"

[[locations]]
name = "usb-disk"
kind = "folder"
path = "{tmp_path / "not-mounted"}"
"""
    )
    return config


async def _all(server: Target, **narrow: Any) -> list[str]:
    return await labels_page_by_page(server, LIST, **narrow)


async def _done(server: Target, payload: dict[str, Any]) -> dict[str, Any]:
    assert payload["userErrors"] == [], payload
    final = await wait_for_operation(server, payload["operation"]["id"])
    assert final["status"] == "SUCCEEDED", final
    return final


async def _copy_to_share(server: Target, point_id: str) -> None:
    exported = await _done(server, (await execute(server, EXPORT, id=point_id))["exportRestorePoint"])
    copy = await execute(server, "query($id: ID!) { operation(id: $id) { localCopy { id } } }", id=exported["id"])
    local_id = copy["operation"]["localCopy"]["id"]
    await _done(server, (await execute(server, UPLOAD, c=local_id, l="share"))["uploadToLocation"])


async def test_a_scheduled_run_shows_the_copies_it_made_and_failed(
    make_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    server = make_server(BACKUPS_CONFIG=str(_config(tmp_path))).start()
    schedule = await create_schedule(server, name="nightly", cron=far_off_cron(), copyToLocations=["share", "usb-disk"])
    run = await _done(server, (await execute(server, RUN, id=schedule["id"]))["runSchedule"])
    shown = (await execute(server, COPIES, id=run["id"]))["operation"]
    files = {loc["name"]: loc["copies"] for loc in (await execute(server, SHARE_FILES))["locations"]}
    [at_share] = [copy for copy in files["share"] if copy["restorePointId"] == run["restorePoint"]["id"]]
    assert shown["copiesMade"] == [{"location": "share", "fileName": at_share["fileName"]}]
    [failed] = shown["copiesFailed"]
    assert failed["location"] == "usb-disk" and "unavailable" in failed["problem"], failed
    # On any other operation: null.
    manual = await create_and_wait(server, "by hand")
    assert (await execute(server, COPIES, id=manual["id"]))["operation"] == {
        "status": "SUCCEEDED",
        "copiesMade": None,
        "copiesFailed": None,
    }


async def test_restore_points_by_maker_and_by_location_page_by_page(
    make_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    server = make_server(BACKUPS_CONFIG=str(_config(tmp_path))).start()
    ci = server.with_token(server.create_token("ci-bot", "operator"))
    made: dict[str, str] = {}
    for label, by in (("a", server), ("b", ci), ("c", ci), ("d", server), ("e", ci), ("f", ci)):
        made[label] = (await create_and_wait(by, label))["restorePoint"]["id"]
    for label in ("a", "c", "e", "f"):
        await _copy_to_share(server, made[label])
    schedule = await create_schedule(server, name="nightly", cron=far_off_cron(), copyToLocations=["share"])
    await _done(server, (await execute(server, RUN, id=schedule["id"]))["runSchedule"])

    assert await _all(server, createdBy="ci-bot") == ["f", "e", "c", "b"]
    assert await _all(server, createdBy="admin") == ["d", "a"]
    assert len(await _all(server, createdBy="schedule:nightly")) == 1
    assert await _all(server, createdBy="nobody") == []
    scheduled = await _all(server, hasCopyAt="share")
    assert scheduled[1:] == ["f", "e", "c", "a"] and scheduled[0].startswith("nightly")
    assert await _all(server, hasCopyAt="share", createdBy="ci-bot") == ["f", "e", "c"]
    assert await _all(server, hasCopyAt="local", createdBy="admin") == ["a"]  # its staged export is local

    unknown = await execute_errors(server, LIST, hasCopyAt="attic")
    assert unknown[0]["extensions"]["code"] == "NOT_FOUND" and "attic" in unknown[0]["message"], unknown
    unreachable = await execute_errors(server, LIST, hasCopyAt="usb-disk")
    assert unreachable[0]["extensions"]["code"] == "LOCATION_UNAVAILABLE", unreachable
    assert "usb-disk" in unreachable[0]["message"]
