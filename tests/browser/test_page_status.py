"""Issue 28 items 1 to 3 in a real Chromium: the region "Backup status" first under the header
(what it says is what the API says), a health problem's link bringing the reader to its
schedule, the restore points before the operation lists, completed operations as recent
activity ("Dismiss all", routine prunes folded) and safety restore points labelled in words."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.support.api import create_and_wait, execute, wait_for_operation
from tests.support.apply import operation, start_apply
from tests.support.browser import AXE, expect, run, scan
from tests.support.config_file import Share, write_config
from tests.support.in_process import InProcessServer
from tests.support.schedules import PRUNE, RUN, create_schedule, far_off_cron

pytestmark = pytest.mark.slow

FILES = 30  # items of the folder source: with the entry delay, a capture runs for a few seconds


@pytest.fixture(scope="module")
def site_env(root: Path) -> dict[str, str]:
    """The settings store, a folder source of FILES files read slowly enough to watch a capture
    run, and a folder location `share`."""
    config = write_config(root, Share(root / "share"), settings=True, page=False)
    for n in range(FILES):
        (root / "site" / f"file-{n:02}.conf").write_text(f"value = {n}\n")
    return {
        "BACKUPS_CONFIG": str(config),
        "BACKUPS_TEST_ENTRY_DELAY": "0.15",
        "BACKUPS_SCHEDULER_POLL_SECONDS": "0.05",
        "BACKUPS_RESTART_COMMAND": "echo restarted",
    }


def size(n: int) -> str:
    """As the page writes a byte count (web/src/ui.tsx `bytes`)."""
    units = ["B", "kB", "MB", "GB", "TB"]
    value, unit = float(n), 0
    while value >= 1000 and unit < len(units) - 1:
        value, unit = value / 1000, unit + 1
    return f"{n} B" if unit == 0 else f"{value:.1f} {units[unit]}"


def uploaded(site: InProcessServer, label: str) -> dict[str, Any]:
    """A new restore point, exported and uploaded to the share."""
    point = run(create_and_wait(site, label))["restorePoint"]
    export = "mutation($id: ID!) { exportRestorePoint(restorePointId: $id) { operation { id } } }"
    final = run(
        wait_for_operation(site, run(execute(site, export, id=point["id"]))["exportRestorePoint"]["operation"]["id"])
    )
    copy = run(execute(site, "query($id: ID!) { operation(id: $id) { localCopy { id } } }", id=final["id"]))
    upload = 'mutation($c: ID!) { uploadToLocation(localCopyId: $c, location: "share") { operation { id } } }'
    started = run(execute(site, upload, c=copy["operation"]["localCopy"]["id"]))
    assert run(wait_for_operation(site, started["uploadToLocation"]["operation"]["id"]))["status"] == "SUCCEEDED"
    return point


def order(page: Any, first: str, then: str) -> bool:
    """Whether the element `first` comes before `then` in the page's order (the DOM's)."""
    return page.page.evaluate(
        "([a, b]) => Boolean(document.getElementById(a).compareDocumentPosition(document.getElementById(b)) & 4)",
        [first, then],
    )


def test_backup_status_comes_first_and_says_what_the_api_says(open_page, site) -> None:
    run(create_and_wait(site, "the same content again"))  # stored once: deduplication saves
    uploaded(site, f"on the share {uuid.uuid4().hex[:6]}")
    schedule = run(create_schedule(site, name=f"nightly-{uuid.uuid4().hex[:6]}", cron=far_off_cron()))
    try:
        api = run(
            execute(
                site,
                """{ backupHealth { status lastSuccessAt nextRunAt }
                     storage { storedBytes capturedBytes localCopiesBytes restorePointCount }
                     locations { name reachable copies { modifiedAt } } }""",
            )
        )
        page = open_page(1280, 800)
        page.sign_in(site.token)
        status = page.region("Backup status")
        expect(status).to_be_visible()
        # First under the header: the first section of main, above the fold of a 1280x800 screen.
        first = "document.querySelector('main > section').getAttribute('aria-labelledby')"
        assert page.page.evaluate(first) == "status-heading"
        assert status.bounding_box()["y"] < 100
        # The restore points come before the operation lists.
        assert order(page, "points-heading", "running-heading") and order(page, "points-heading", "completed-heading")

        health = api["backupHealth"]
        last = status.get_by_role("listitem", name="Last backup").locator("time")
        expect(last).to_have_attribute("datetime", health["lastSuccessAt"])
        expect(last).to_have_text(re.compile(r"^(just now|\d+ minutes? ago)$"))
        exact = page.page.evaluate("iso => new Date(iso).toLocaleString()", health["lastSuccessAt"])
        expect(last).to_have_attribute("title", exact)  # the exact time on hover
        upcoming = status.get_by_role("listitem", name="Next run").locator("time")
        expect(upcoming).to_have_attribute("datetime", health["nextRunAt"])
        expect(upcoming).to_have_text(re.compile(r"^in \d+ hours?$"))

        storage = api["storage"]
        points = storage["restorePointCount"]
        expect(status.get_by_role("listitem", name="Storage used").locator(".fact-value")).to_have_text(
            f"{size(storage['storedBytes'])} · {points} restore point{'' if points == 1 else 's'}"
            f" (+ {size(storage['localCopiesBytes'])} local copies)"
        )
        saved = storage["capturedBytes"] - storage["storedBytes"]
        assert saved > 0, storage  # the settings captured twice (the test's two points) are stored once
        expect(status.get_by_role("listitem", name="Saved by deduplication").locator(".fact-value")).to_have_text(
            f"{size(saved)} of {size(storage['capturedBytes'])} captured"
        )

        expect(status.get_by_role("status", name="Backup health")).to_have_text("Backups healthy")
        share = next(location for location in api["locations"] if location["name"] == "share")
        state = status.get_by_role("listitem").filter(has_text=re.compile(r"^share: "))
        expect(state).to_contain_text("share: reachable · newest copy “on the share")
        expect(state.locator("time")).to_have_attribute("datetime", share["copies"][0]["modifiedAt"])
        state.get_by_role("button", name="share", exact=True).click()
        expect(page.page.get_by_role("listitem", name="Location share")).to_be_focused()
        assert (scan(page) if AXE.is_file() else []) == []
        page.page.evaluate("window.scrollTo(0, 0)")
        page.shot("status-first", full_page=False)
        phone = open_page(390, 844)
        phone.sign_in(site.token)
        narrow = phone.region("Backup status")
        expect(narrow.get_by_role("listitem", name="Saved by deduplication")).to_be_visible()
        box = narrow.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390, box  # no sideways scrolling for it
        phone.shot("status-first-phone", full_page=False)
    finally:
        run(execute(site, "mutation($id: ID!) { deleteSchedule(id: $id) { deletedId } }", id=schedule["id"]))


def test_a_health_problem_brings_the_reader_to_its_schedule(open_page, site, root) -> None:
    schedule = run(create_schedule(site, name=f"failing-{uuid.uuid4().hex[:6]}", cron=far_off_cron()))
    folder = root / "site"
    moved = folder.with_name("site-away")
    page = open_page(1280, 800)
    page.sign_in(site.token)
    folder.rename(moved)  # the folder source cannot be read: the run fails
    try:
        op = run(execute(site, RUN, id=schedule["id"]))["runSchedule"]["operation"]
        assert run(wait_for_operation(site, op["id"]))["status"] == "FAILED"
    finally:
        moved.rename(folder)
    try:
        issues = run(execute(site, "{ backupHealth { issues { message subjectKind subjectId } } }"))
        issue = next(i for i in issues["backupHealth"]["issues"] if i["subjectId"] == schedule["id"])
        assert issue["subjectKind"] == "SCHEDULE"
        alert = page.region("Backup status").get_by_role("alert", name="Backup health")
        link = alert.get_by_role("button", name=issue["message"])
        link.click()
        target = page.page.get_by_role("listitem", name=f"Schedule {schedule['name']}")
        expect(target).to_be_focused()
        expect(target).to_be_in_viewport()
    finally:
        run(execute(site, "mutation($id: ID!) { deleteSchedule(id: $id) { deletedId } }", id=schedule["id"]))
    expect(page.region("Backup status").get_by_role("status", name="Backup health")).to_have_text("Backups healthy")


def test_dismiss_all_takes_the_finished_ones_and_leaves_the_running_one(open_page, site) -> None:
    label = f"finished {uuid.uuid4().hex[:6]}"
    run(create_and_wait(site, label))
    schedule = run(
        create_schedule(site, name=f"pruned-{uuid.uuid4().hex[:6]}", cron=far_off_cron(), retention={"keepLast": 5})
    )
    try:
        for _ in range(2):  # two routine prunes: folded under one line
            pruned = run(execute(site, PRUNE, id=schedule["id"]))["pruneSchedule"]["operation"]
            assert run(wait_for_operation(site, pruned["id"]))["status"] == "SUCCEEDED"
    finally:
        run(execute(site, "mutation($id: ID!) { deleteSchedule(id: $id) { deletedId } }", id=schedule["id"]))
    page = open_page(1280, 800)
    page.sign_in(site.token)
    completed = page.region("Completed operations")
    expect(completed.get_by_role("listitem").filter(has_text=f"Create restore point: {label}")).to_be_visible()
    folded = completed.locator("details summary")
    expect(folded).to_have_text(re.compile(r"^\d+ prunes \(routine\)$"))
    prune_rows = completed.locator("details").get_by_role("listitem").filter(has_text="Prune restore points")
    expect(prune_rows.first).to_be_hidden()  # folded away until the summary is opened
    folded.click()
    expect(prune_rows.first).to_be_visible()
    expect(prune_rows.first.get_by_role("button", name="Show log")).to_be_visible()  # the log one click away

    running_label = f"still running {uuid.uuid4().hex[:6]}"
    page.page.get_by_role("button", name="Create restore point").click()
    page.page.get_by_role("textbox", name="Label").fill(running_label)
    page.page.get_by_role("button", name="Create", exact=True).click()
    # The operation lists are below the restore points: the create form leads to its progress.
    page.page.get_by_role("button", name="Follow its progress").click()
    expect(page.page.get_by_role("heading", name="Running operations")).to_be_focused()
    # Until it has made its restore point, a create is named without its label.
    running = page.region("Running operations").get_by_role("progressbar", name="Progress of Create restore point")
    expect(running).to_be_visible()
    (op,) = run(execute(site, "{ operations(status: [QUEUED, RUNNING]) { nodes { id } } }"))["operations"]["nodes"]
    completed.get_by_role("button", name="Dismiss all").click()
    expect(completed).to_contain_text("None.")
    expect(completed.get_by_role("button", name="Dismiss all")).to_have_count(0)
    left = run(execute(site, "{ operations(first: 100) { nodes { id } } }"))["operations"]["nodes"]
    assert left == [{"id": op["id"]}]  # every finished one dismissed, the running one not
    assert run(wait_for_operation(site, op["id"]))["dismissed"] is False
    expect(completed.get_by_role("listitem").filter(has_text=f"Create restore point: {running_label}")).to_be_visible()


def test_a_safety_restore_point_says_what_it_was_made_before(open_page, site) -> None:
    label = f"nightly {uuid.uuid4().hex[:6]}"
    point = run(create_and_wait(site, label))["restorePoint"]
    applied = run(start_apply(site, point["id"], safety=True))
    assert run(wait_for_operation(site, applied["id"], timeout=120))["status"] == "SUCCEEDED"
    safety = run(operation(site, applied["id"]))["safetyRestorePoint"]
    assert safety["label"] == f"Before applying '{label}'" and point["id"] in safety["note"]
    # One labelled by an older server, with the applied restore point's id: said in words too.
    older = run(create_and_wait(site, "older safety"))["restorePoint"]
    old_label = f"Before applying {point['id']} ({label})"
    update = "mutation($id: ID!, $label: String) { updateRestorePoint(id: $id, label: $label) { userErrors { code } } }"
    assert run(execute(site, update, id=older["id"], label=old_label))["updateRestorePoint"]["userErrors"] == []

    page = open_page(1280, 800)
    page.sign_in(site.token)
    table = page.page.get_by_role("table", name="Restore points")
    expect(table.locator(f"#point-{safety['id']} th")).to_contain_text(f"Before applying '{label}'")
    expect(table.locator(f"#point-{older['id']} th")).to_contain_text(f"Before applying '{label}'")
    expect(table.locator(f"#point-{older['id']} th")).not_to_contain_text(point["id"])
    expect(table.locator(f"#point-{older['id']} th span[title]")).to_have_attribute("title", old_label)
    # Ranked actions, every name kept: Apply primary, Delete outlined in red.
    row = table.locator(f"#point-{safety['id']}")
    for name in ("Apply", "Browse", "Compare", "Export", "Pin", "Edit", "Delete"):
        expect(row.get_by_role("button", name=name, exact=True)).to_be_visible()
    assert (
        row.get_by_role("button", name="Delete", exact=True).evaluate("b => getComputedStyle(b).color")
        == "rgb(160, 20, 30)"
    )
    assert "secondary" not in (row.get_by_role("button", name="Apply", exact=True).get_attribute("class") or "")
    assert "secondary" in (row.get_by_role("button", name="Export", exact=True).get_attribute("class") or "")
