"""The page's views beyond the Backups tab, in a real Chromium against a real server with a
folder source and a folder location: the health banner, schedules with their retention preview,
locations and remote copies, compare, and the apply dialog's preview, choice of sources,
fingerprint (CONFLICT) and report."""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.support.api import create_and_wait, execute, execute_errors, update_settings, wait_for_operation
from tests.support.browser import AXE, expect, run, scan
from tests.support.config_file import Share, write_config
from tests.support.in_process import InProcessServer
from tests.support.schedules import RUN, create_schedule, eventually

pytestmark = pytest.mark.slow


def serious_violations(page: Any) -> list[str]:
    """axe-core's serious and critical violations; none to report where axe-core is missing (a
    page built elsewhere, no node_modules here: test_page.py's scan says so by skipping)."""
    return scan(page) if AXE.is_file() else []


@pytest.fixture(scope="module")
def folder(root: Path) -> Path:
    """The folder source's folder."""
    return root / "site"


@pytest.fixture(scope="module")
def site_env(root: Path, folder: Path) -> dict[str, str]:
    """The settings store and a folder source; a folder location `share`."""
    config = write_config(root, Share(root / "share"), settings=True, page=False)
    (folder / "app.conf").write_text("volume = 3\n")
    return {
        "BACKUPS_CONFIG": str(config),
        "BACKUPS_SCHEDULER_POLL_SECONDS": "0.05",
        "BACKUPS_RESTART_COMMAND": "echo restarted",
    }


def schedules(site: InProcessServer) -> list[dict[str, Any]]:
    query = "{ schedules { id name enabled cron timeZone labelTemplate retention { keepLast keepDaily } } }"
    return run(execute(site, query))["schedules"]


def test_the_health_banner_follows_a_failing_schedule_live(open_page, site, folder) -> None:
    page = open_page()
    page.sign_in(site.token)
    banner = page.page.get_by_role("status", name="Backup health")
    expect(banner).to_contain_text("Backups healthy")
    schedule = run(create_schedule(site, name=f"failing-{uuid.uuid4().hex[:6]}", cron="0 * * * *"))
    moved = folder.with_name("site-away")
    folder.rename(moved)  # the folder source cannot be read: the run fails
    try:
        op = run(execute(site, RUN, id=schedule["id"]))["runSchedule"]["operation"]
        assert run(wait_for_operation(site, op["id"]))["status"] == "FAILED"
    finally:
        moved.rename(folder)
    alert = page.page.get_by_role("alert", name="Backup health")
    expect(alert).to_contain_text("CRITICAL")  # pushed by backupHealthChanged, no reload
    expect(alert.get_by_role("listitem").first).to_contain_text("SOURCE_UNAVAILABLE")
    assert serious_violations(page) == []
    page.shot("health-critical", full_page=False)
    run(execute(site, "mutation($id: ID!) { deleteSchedule(id: $id) { deletedId } }", id=schedule["id"]))
    expect(banner).to_contain_text("Backups healthy")
    expect(alert).to_have_count(0)


def test_schedules_create_edit_pause_run_preview_and_delete(open_page, site) -> None:
    name = f"nightly-{uuid.uuid4().hex[:6]}"
    page = open_page()
    page.sign_in(site.token)
    region = page.region("Schedules")
    region.get_by_role("button", name="New schedule").click()
    form = region.get_by_role("form", name="New schedule")
    form.get_by_role("textbox", name="Name").fill(name)
    form.get_by_role("combobox", name="Repeats").select_option("custom")
    form.get_by_role("textbox", name="Cron").fill("61 * * * *")
    form.get_by_role("textbox", name="Time zone").fill("Europe/Paris")
    form.get_by_role("textbox", name="Keep last").fill("0")
    form.get_by_role("button", name="Create schedule").click()
    # Each userError next to the field it names; nothing is created.
    cron = form.get_by_role("textbox", name="Cron")
    keep_last = form.get_by_role("textbox", name="Keep last")
    expect(cron.or_(keep_last).locator("xpath=..").get_by_role("alert").first).to_be_visible()
    expect(cron).to_have_attribute("aria-invalid", "true")
    expect(cron).to_have_accessible_description(re.compile("INVALID_INPUT"))
    assert [s for s in schedules(site) if s["name"] == name] == []
    cron.fill("0 3 * * *")
    form.get_by_role("button", name="Create schedule").click()
    expect(keep_last).to_have_attribute("aria-invalid", "true")
    expect(keep_last).to_have_accessible_description(re.compile("keepLast"))
    assert [s for s in schedules(site) if s["name"] == name] == []
    keep_last.fill("2")
    form.get_by_role("textbox", name="Label template").fill("{schedule} at {time}")
    form.get_by_role("button", name="Create schedule").click()

    item = region.get_by_role("listitem", name=f"Schedule {name}")
    expect(item).to_contain_text("daily at 03:00, Europe/Paris")  # a custom cron that is a preset, in words
    expect(item).to_contain_text("keep last 2")
    made = next(s for s in schedules(site) if s["name"] == name)
    assert made["enabled"] and made["retention"]["keepLast"] == 2 and made["labelTemplate"] == "{schedule} at {time}"

    item.get_by_role("button", name="Pause").click()
    expect(item).to_contain_text("paused")
    assert next(s for s in schedules(site) if s["name"] == name)["enabled"] is False
    item.get_by_role("button", name="Resume").click()
    expect(item).to_contain_text("enabled")

    # Run now twice (keep last 2 prunes nothing).
    for n in range(2):
        item.get_by_role("button", name="Run now").click()
        runs = run(eventually(lambda n=n: finished_runs(site, name, n + 1)))
        assert [op["status"] for op in runs] == ["SUCCEEDED"] * (n + 1)
    # Edit: keep last 1 and daily 1; an unknown placeholder is refused next to the template.
    item.get_by_role("button", name="Edit").click()
    edit = item.get_by_role("form", name=f"Edit schedule {name}")
    edit.get_by_role("textbox", name="Label template").fill("{nope}")
    edit.get_by_role("button", name="Save schedule").click()
    expect(edit.get_by_role("textbox", name="Label template")).to_have_accessible_description(re.compile("placeholder"))
    edit.get_by_role("textbox", name="Label template").fill("{schedule} {datetime}")
    edit.get_by_role("textbox", name="Keep last").fill("1")
    edit.get_by_role("textbox", name="Keep daily").fill("1")
    edit.get_by_role("button", name="Save schedule").click()
    expect(edit).to_have_count(0)
    assert next(s for s in schedules(site) if s["name"] == name)["retention"] == {"keepLast": 1, "keepDaily": 1}

    # The preview says what a prune would do now: the older run goes, with its reasons.
    item.get_by_role("button", name="Retention preview").click()
    table = item.get_by_role("table", name=f"Retention preview of {name}")
    expect(table.get_by_role("row")).to_have_count(3)
    expect(table.get_by_role("row").filter(has_text="Delete")).to_have_count(1)
    expect(table.get_by_role("row").filter(has_text="Keep")).to_have_count(1)
    expect(item).to_contain_text("keeps 1 and deletes 1 of 2")
    page.shot("schedules")
    assert serious_violations(page) == []  # axe-core: no serious or critical violation, preview and all

    # Prune now does what the preview said: the older run's restore point goes, the newer stays.
    schedule_id = next(s["id"] for s in schedules(site) if s["name"] == name)
    query = "query($id: ID!) { restorePoints(scheduleId: $id) { nodes { id } } }"
    before = [n["id"] for n in run(execute(site, query, id=schedule_id))["restorePoints"]["nodes"]]
    assert len(before) == 2
    item.get_by_role("button", name="Prune now").click()
    expect(item.get_by_role("status")).to_contain_text("Pruning")
    run(eventually(lambda: _count_is(site, query, schedule_id, 1)))
    after = [n["id"] for n in run(execute(site, query, id=schedule_id))["restorePoints"]["nodes"]]
    assert after == before[:1]  # newest first: the newest is the one kept

    item.get_by_role("button", name="Delete", exact=True).click()
    assert any(s["name"] == name for s in schedules(site))
    item.get_by_role("button", name="Delete for good").click()
    expect(item).to_have_count(0)
    assert not any(s["name"] == name for s in schedules(site))


def test_upload_to_a_location_then_fetch_and_import(open_page, site) -> None:
    label = f"to share {uuid.uuid4().hex[:6]}"
    point = run(create_and_wait(site, label))["restorePoint"]
    data = run(
        execute(
            site, "mutation($id: ID!) { exportRestorePoint(restorePointId: $id) { operation { id } } }", id=point["id"]
        )
    )
    final = run(wait_for_operation(site, data["exportRestorePoint"]["operation"]["id"]))
    copy = run(execute(site, "query($id: ID!) { operation(id: $id) { localCopy { id fileName } } }", id=final["id"]))
    file_name = copy["operation"]["localCopy"]["fileName"]
    page = open_page(width=1000, height=700)
    page.sign_in(site.token)
    expect(page.row(label)).to_have_count(1)
    region = page.region("Locations")
    share = region.get_by_role("listitem", name="Location share")
    expect(share).to_contain_text("reachable")
    expect(region.get_by_role("listitem", name="Location local")).to_contain_text(file_name)
    expect(page.row(label)).to_contain_text("local")

    form = region.get_by_role("form", name="Upload to a location")
    form.get_by_role("combobox", name="Local copy to upload").select_option(label=file_name)
    form.get_by_role("combobox", name="Location").select_option("share")
    form.get_by_role("button", name="Upload to location").click()
    expect(form.get_by_role("status")).to_contain_text("Upload to share: SUCCEEDED")
    copies_at_share = share.get_by_role("list", name="Copies at share").get_by_role("listitem")
    expect(copies_at_share.filter(has_text=label)).to_have_count(1)
    remote = copies_at_share.first  # the only one: this test alone uploads
    expect(page.row(label).get_by_role("cell", name=re.compile("share"))).to_have_count(1)
    page.shot("locations")

    # Gone here (copy and restore point), then fetched back from the share and imported.
    local_id = copy["operation"]["localCopy"]["id"]
    run(execute(site, "mutation($id: ID!) { deleteLocalCopy(id: $id) { deletedId } }", id=local_id))
    run(execute(site, "mutation($id: ID!) { deleteRestorePoint(id: $id) { deletedId } }", id=point["id"]))
    page.page.reload()
    page.page.get_by_text("Signed in as").wait_for()
    expect(page.row(label)).to_have_count(0)
    expect(remote).to_contain_text(f"{point['id']}, not in this server")
    remote.get_by_role("button", name="Fetch").click()
    expect(remote.get_by_role("status").first).to_contain_text("SUCCEEDED")
    remote.get_by_role("button", name="Import the fetched copy").click()
    expect(page.row(label)).to_have_count(1)
    got = run(execute(site, "query($id: ID!) { restorePoint(id: $id) { origin } }", id=point["id"]))
    assert got["restorePoint"]["origin"] == "IMPORTED"

    # Deleted from the share: asked twice (Delete, then Delete for good), then gone there too.
    remote_id = next(c["id"] for c in copies_at(site, "share") if c["restorePointId"] == point["id"])
    remote.get_by_role("button", name="Delete", exact=True).click()
    assert remote_id in [c["id"] for c in copies_at(site, "share")]  # not before it is confirmed
    remote.get_by_role("button", name="Delete for good").click()
    expect(copies_at_share.filter(has_text=label)).to_have_count(0)
    assert remote_id not in [c["id"] for c in copies_at(site, "share")]


def test_copies_at_an_unreachable_location_are_not_known_not_gone(open_page, site, root) -> None:
    """Issue 23 item 4: while the share cannot be read (its disk unmounted), a restore point's
    "Copies at" says the copy there is not known right now, instead of dropping the share."""
    label = f"kept on the share {uuid.uuid4().hex[:6]}"
    point = run(create_and_wait(site, label))["restorePoint"]
    exported = run(
        execute(
            site, "mutation($id: ID!) { exportRestorePoint(restorePointId: $id) { operation { id } } }", id=point["id"]
        )
    )
    final = run(wait_for_operation(site, exported["exportRestorePoint"]["operation"]["id"]))
    copy = run(execute(site, "query($id: ID!) { operation(id: $id) { localCopy { id } } }", id=final["id"]))
    upload = 'mutation($c: ID!) { uploadToLocation(localCopyId: $c, location: "share") { operation { id } } }'
    started = run(execute(site, upload, c=copy["operation"]["localCopy"]["id"]))
    assert run(wait_for_operation(site, started["uploadToLocation"]["operation"]["id"]))["status"] == "SUCCEEDED"

    page = open_page()
    page.sign_in(site.token)
    cell = page.row(label).get_by_role("cell").nth(3)  # Copies at (the label is the row header)
    # A query waits a short while for a location's listing and shows what it has by then (the
    # last listing, or "unknown"); a listing that comes late is what the next query shows. On a
    # loaded machine the listing may come late, so the page is loaded again until it shows it.
    show_eventually(page, cell, "local, share")
    share, away = root / "share", root / "share-unmounted"
    share.rename(away)
    try:
        show_eventually(page, cell, "local, share: unknown (location unreachable)")
    finally:
        away.rename(share)
    show_eventually(page, cell, "local, share")


def show_eventually(page: Any, cell: Any, text: str, seconds: float = 60) -> None:
    """Load the page again until `cell` says `text` (each load waited on for 5 s)."""
    deadline = time.monotonic() + seconds
    while True:
        page.page.reload()
        page.page.get_by_text("Signed in as").wait_for()
        try:
            expect(cell).to_have_text(text, timeout=5000)
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise


def copies_at(site: InProcessServer, location: str) -> list[dict[str, Any]]:
    listed = run(execute(site, "{ locations { name copies { id restorePointId } } }"))["locations"]
    return next(entry["copies"] for entry in listed if entry["name"] == location)


def test_compare_then_apply_with_preview_sources_conflict_and_report(open_page, site, folder) -> None:
    older, newer = f"older {uuid.uuid4().hex[:6]}", f"newer {uuid.uuid4().hex[:6]}"
    run(update_settings(site, "audio", {"marker": "before"}))
    (folder / "app.conf").write_text("volume = 3\n")
    run(create_and_wait(site, older))
    run(update_settings(site, "audio", {"marker": "after"}))
    (folder / "app.conf").write_text("volume = 11\n")
    run(create_and_wait(site, newer))
    page = open_page(width=1000, height=700)
    page.sign_in(site.token)

    page.row(newer).get_by_role("button", name="Compare").click()
    compare = page.page.get_by_role("dialog", name="Compare restore points")
    expect(compare.get_by_role("combobox")).to_contain_text(older)  # the next older one by default
    expect(compare).to_contain_text(f"From {older} to {newer}")
    changes = compare.get_by_role("list", name="Changes between the restore points")
    expect(changes.get_by_role("listitem").filter(has_text="site/app.conf")).to_have_count(1)
    expect(compare).to_contain_text("0 added, 0 removed, 2 changed")
    changes.get_by_role("listitem").filter(has_text="site/app.conf").locator("summary").click()
    expect(changes).to_contain_text("+volume = 11")
    page.shot("compare")
    compare.get_by_role("button", name="Close").click()
    expect(compare).to_have_count(0)

    # Apply the older one, only its settings: the preview follows the choice.
    page.row(older).get_by_role("button", name="Apply").click()
    dialog = page.page.get_by_role("dialog", name="Apply restore point")
    preview = dialog.get_by_role("list", name="Changes the apply makes")
    expect(preview.get_by_role("listitem")).to_have_count(2)
    dialog.get_by_role("checkbox", name="Apply source site").uncheck()
    expect(preview.get_by_role("listitem")).to_have_count(1)
    expect(preview).not_to_contain_text("app.conf")
    preview.get_by_role("listitem").first.locator("summary").click()
    expect(preview).to_contain_text('"after" → "before"')
    dialog.get_by_role("textbox", name="Type APPLY to confirm").fill("APPLY")
    page.shot("apply-preview")
    page.shot("docs-apply-preview", full_page=False)  # for README (make screenshots)

    # The settings change after the preview: the apply is refused (CONFLICT), nothing changed.
    run(update_settings(site, "audio", {"marker": "meanwhile"}))
    dialog.get_by_role("button", name="Apply", exact=True).click()
    expect(dialog.get_by_role("alert")).to_contain_text("CONFLICT")
    assert settings_marker(site) == "meanwhile"
    expect(preview).to_contain_text('"meanwhile" → "before"')  # read again
    dialog.get_by_role("button", name="Apply", exact=True).click()
    report = dialog.get_by_role("region", name="Report of the apply")
    expect(report).to_contain_text("0 added, 0 removed, 1 changed")
    assert settings_marker(site) == "before"
    assert (folder / "app.conf").read_text() == "volume = 11\n"  # not applied: left out
    page.shot("apply-report")
    dialog.get_by_role("button", name="Close").click()


async def finished_runs(site: InProcessServer, name: str, count: int) -> list[dict[str, Any]] | None:
    """The schedule's runs (its restore point operations) once there are `count`, all done."""
    query = """query($by: String) { operations(first: 10, requestedBy: $by, kind: [CREATE_RESTORE_POINT]) {
        nodes { id done status } } }"""
    ops = (await execute(site, query, by=f"schedule:{name}"))["operations"]["nodes"]
    return ops if len(ops) == count and all(op["done"] for op in ops) else None


def settings_marker(site: InProcessServer) -> Any:
    modules = run(execute(site, "{ modules { name settings } }"))["modules"]
    return {m["name"]: m["settings"] for m in modules}["audio"]["marker"]


def test_a_schedule_set_up_with_the_time_picker_after_changes_and_a_copy(open_page, site) -> None:
    """The form sets up a real backup job without cron: a weekly time picked, runs after changes,
    a copy to a location by its checkbox; the schedule is said in words, and the edit form reads
    the picker back from the cron."""
    name = f"weekly-{uuid.uuid4().hex[:6]}"
    page = open_page()
    page.sign_in(site.token)
    region = page.region("Schedules")
    region.get_by_role("button", name="New schedule").click()
    form = region.get_by_role("form", name="New schedule")
    form.get_by_role("textbox", name="Name").fill(name)
    expect(form.get_by_role("textbox", name="Cron")).to_have_count(0)  # the picker writes it
    form.get_by_role("combobox", name="Repeats").select_option("weekly")
    form.get_by_role("combobox", name="On").select_option("Monday")
    form.get_by_label("At", exact=True).fill("02:30")
    form.get_by_role("textbox", name="Time zone").fill("Europe/Berlin")
    form.get_by_role("checkbox", name="After changes").check()
    quiet = form.get_by_role("textbox", name="Quiet time (seconds)")
    quiet.fill("0")  # the server's rule (1 s to a week), shown next to the field; nothing made
    form.get_by_role("button", name="Create schedule").click()
    expect(quiet).to_have_accessible_description(re.compile("afterChangeQuietSeconds must be between 1"))
    assert [s for s in schedules(site) if s["name"] == name] == []
    quiet.fill("600")
    expect(form.get_by_role("status", name="Runs")).to_have_text(
        "Runs weekly on Monday at 02:30, Europe/Berlin and after changes (quiet 10 min)"
    )
    copies = form.get_by_role("group", name="Copy to locations")
    copies.get_by_role("checkbox", name="share").check()
    form.get_by_role("button", name="Create schedule").click()

    item = region.get_by_role("listitem", name=f"Schedule {name}")
    expect(item).to_contain_text("weekly on Monday at 02:30, Europe/Berlin and after changes (quiet 10 min)")
    expect(item).to_contain_text("copies to share")
    query = "{ schedules { name cron timeZone afterChangeQuietSeconds copyToLocations } }"
    made = next(s for s in run(execute(site, query))["schedules"] if s["name"] == name)
    assert made == {
        "name": name,
        "cron": "30 2 * * 1",
        "timeZone": "Europe/Berlin",
        "afterChangeQuietSeconds": 600,
        "copyToLocations": ["share"],
    }

    # Edited: the picker reads the cron back; off the timetable it runs after changes only.
    item.get_by_role("button", name="Edit").click()
    edit = item.get_by_role("form", name=f"Edit schedule {name}")
    expect(edit.get_by_role("combobox", name="Repeats")).to_have_value("weekly")
    expect(edit.get_by_role("combobox", name="On")).to_have_value("1")
    expect(edit.get_by_label("At", exact=True)).to_have_value("02:30")
    expect(edit.get_by_role("group", name="Copy to locations").get_by_role("checkbox", name="share")).to_be_checked()
    edit.get_by_role("checkbox", name="On a timetable").uncheck()
    edit.get_by_role("checkbox", name="share").uncheck()
    edit.get_by_role("button", name="Save schedule").click()
    expect(edit).to_have_count(0)
    expect(item).to_contain_text("after changes (quiet 10 min)")
    changed = next(s for s in run(execute(site, query))["schedules"] if s["name"] == name)
    assert changed["cron"] is None and changed["afterChangeQuietSeconds"] == 600 and changed["copyToLocations"] == []

    # A custom cron is said in words too (cronstrue), the cron itself on hover.
    item.get_by_role("button", name="Edit").click()
    edit.get_by_role("checkbox", name="On a timetable").check()
    edit.get_by_role("combobox", name="Repeats").select_option("custom")
    edit.get_by_role("textbox", name="Cron").fill("*/15 * * * *")
    edit.get_by_role("checkbox", name="After changes").uncheck()
    edit.get_by_role("button", name="Save schedule").click()
    expect(edit).to_have_count(0)
    expect(item).to_contain_text("every 15 minutes, Europe/Berlin")
    expect(item.get_by_title("cron */15 * * * *")).to_be_visible()
    assert serious_violations(page) == []
    run(execute(site, "mutation($id: ID!) { deleteSchedule(id: $id) { deletedId } }", id=schedule_id(site, name)))


def test_a_verification_schedule_set_up_in_the_form_and_said_in_words(open_page, site) -> None:
    """The form's kind "Verify": a read percent and days to skip, checked by the server next to
    their fields; the list says what it does in words and offers no retention for it; its run
    verifies; the edit form reads it back."""
    name = f"check-{uuid.uuid4().hex[:6]}"
    page = open_page()
    page.sign_in(site.token)
    region = page.region("Schedules")
    region.get_by_role("button", name="New schedule").click()
    form = region.get_by_role("form", name="New schedule")
    form.get_by_role("textbox", name="Name").fill(name)
    form.get_by_role("radio", name="Verify").check()
    expect(form.get_by_role("group", name="Copy to locations")).to_have_count(0)
    expect(form.get_by_role("checkbox", name="After changes")).to_have_count(0)
    form.get_by_role("combobox", name="Repeats").select_option("daily")
    form.get_by_label("At", exact=True).fill("03:00")
    form.get_by_role("textbox", name="Time zone").fill("UTC")
    percent = form.get_by_role("textbox", name="Read percent")
    percent.fill("0")  # the server's rule, next to the field; nothing made
    form.get_by_role("button", name="Create schedule").click()
    expect(percent).to_have_accessible_description(re.compile("readPercent must be from 1 to 100"))
    assert [s for s in schedules(site) if s["name"] == name] == []
    percent.fill("10")
    form.get_by_role("textbox", name="Skip verified within (days)").fill("7")
    expect(form.get_by_role("status", name="Runs")).to_have_text(
        "Verifies daily at 03:00, UTC, 10% each run, skips verified within 7 days"
    )
    form.get_by_role("button", name="Create schedule").click()

    item = region.get_by_role("listitem", name=f"Schedule {name}")
    expect(item).to_contain_text("verifies daily at 03:00, UTC, 10% each run, skips verified within 7 days")
    expect(item.get_by_role("button", name="Prune now")).to_have_count(0)
    expect(item.get_by_role("button", name="Retention preview")).to_have_count(0)
    query = "{ schedules { name kind cron timeZone verification { readPercent outdatedAfterDays copies } } }"
    made = next(s for s in run(execute(site, query))["schedules"] if s["name"] == name)
    assert made == {
        "name": name,
        "kind": "VERIFY",
        "cron": "0 3 * * *",
        "timeZone": "UTC",
        "verification": {"readPercent": 10, "outdatedAfterDays": 7, "copies": True},
    }
    item.get_by_role("button", name="Run now").click()
    expect(item.get_by_role("status")).to_have_text("Started: see Running operations.")
    runs = run(eventually(lambda: _verification_runs(site, name)))
    assert runs[0]["kind"] == "VERIFY_BACKUPS"
    assert run(wait_for_operation(site, runs[0]["id"]))["status"] == "SUCCEEDED"

    item.get_by_role("button", name="Edit").click()
    edit = item.get_by_role("form", name=f"Edit schedule {name}")
    expect(edit.get_by_role("radio", name="Verify")).to_be_checked()
    expect(edit.get_by_role("textbox", name="Read percent")).to_have_value("10")
    expect(edit.get_by_role("textbox", name="Skip verified within (days)")).to_have_value("7")
    edit.get_by_role("checkbox", name="Verify copies too").uncheck()
    edit.get_by_role("button", name="Save schedule").click()
    expect(edit).to_have_count(0)
    expect(item).to_contain_text("10% each run, skips verified within 7 days, restore points only")
    assert serious_violations(page) == []
    run(execute(site, "mutation($id: ID!) { deleteSchedule(id: $id) { deletedId } }", id=schedule_id(site, name)))


async def _verification_runs(site: InProcessServer, name: str) -> list[dict[str, Any]] | None:
    query = "query($by: String) { operations(first: 10, requestedBy: $by) { nodes { id kind } } }"
    nodes = (await execute(site, query, by=f"schedule:{name}"))["operations"]["nodes"]
    return nodes or None


def schedule_id(site: InProcessServer, name: str) -> str:
    return next(s["id"] for s in schedules(site) if s["name"] == name)


def test_views_readable_at_360_pixels(open_page, site) -> None:
    page = open_page(width=360, height=740)
    page.sign_in(site.token)
    page.region("Schedules").get_by_role("button", name="New schedule").click()
    expect(page.region("Locations").get_by_role("listitem", name="Location share")).to_be_visible()
    assert page.page.evaluate("document.documentElement.scrollWidth") <= 360
    assert serious_violations(page) == []


def test_the_top_of_the_page_for_the_readme(open_page, site) -> None:
    """README's picture of the page (make screenshots): the top of the page as a person who has
    dismissed what the earlier tests ran sees it, down to the restore points and their filters."""
    label = f"before the upgrade {uuid.uuid4().hex[:6]}"
    run(create_and_wait(site, label))
    done = run(execute(site, "{ operations(first: 50) { nodes { id done } } }"))["operations"]["nodes"]
    for op in done:
        if op["done"]:
            run(execute(site, "mutation($id: ID!) { dismissOperation(id: $id) { userErrors { code } } }", id=op["id"]))
    page = open_page(width=1000, height=700)
    page.sign_in(site.token)
    expect(page.region("Completed operations")).to_contain_text("None.")
    expect(page.row(label)).to_have_count(1)
    expect(page.page.get_by_role("group", name="Filter restore points")).to_be_in_viewport()
    page.shot("docs-main", full_page=False)


async def _count_is(site: InProcessServer, query: str, schedule_id: str, count: int) -> bool:
    return len((await execute(site, query, id=schedule_id))["restorePoints"]["nodes"]) == count


def test_an_admin_makes_and_revokes_a_token_on_the_page(open_page, site) -> None:
    """The region "Tokens": a token made (its secret shown once, and it works), listed without
    its secret, revoked after a second click (refused at once); not shown to an operator."""
    name = f"reader-{uuid.uuid4().hex[:6]}"
    page = open_page()
    page.sign_in(site.token)
    region = page.region("Tokens")
    form = region.get_by_role("form", name="New token")
    form.get_by_role("textbox", name="Token name").fill(name)
    form.get_by_role("combobox", name="Role").select_option("VIEWER")
    form.get_by_role("combobox", name="Lifetime").select_option("30 days")
    form.get_by_role("button", name="Create token").click()
    secret = form.get_by_role("textbox", name=f"Secret of {name}").input_value()
    assert secret.startswith("bk_")
    me = "{ me { name role } }"
    assert run(execute(site.with_token(secret), me))["me"] == {"name": name, "role": "VIEWER"}
    row = region.get_by_role("table", name="API tokens").get_by_role("row").filter(has_text=name)
    expect(row).to_contain_text("active")
    expect(row).to_contain_text(secret[:7])
    assert secret not in region.inner_text()  # once the notice is put away, nowhere
    form.get_by_role("button", name="I have copied it").click()
    expect(form.get_by_role("textbox", name=f"Secret of {name}")).to_have_count(0)
    assert secret not in page.page.content()

    # The same name again is refused next to the field while that token is active.
    form.get_by_role("textbox", name="Token name").fill(name)
    form.get_by_role("button", name="Create token").click()
    expect(form.get_by_role("textbox", name="Token name")).to_have_accessible_description(re.compile("exists"))

    row.get_by_role("button", name=f"Revoke {name}", exact=True).click()
    assert run(execute(site.with_token(secret), me))["me"]["name"] == name  # not yet: a second click
    row.get_by_role("button", name=f"Revoke {name} now").click()
    expect(row).to_contain_text("revoked")
    errors = run(execute_errors(site.with_token(secret), me))
    assert errors[0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert serious_violations(page) == []

    operator = open_page()
    operator.sign_in(site.create_token(f"op-{uuid.uuid4().hex[:6]}", "operator"))
    expect(operator.region("Schedules")).to_be_visible()
    expect(operator.page.get_by_role("region", name="Tokens")).to_have_count(0)


def test_an_admin_saves_the_emergency_kit_after_typing_the_words(open_page, site) -> None:
    page = open_page()
    page.sign_in(site.token)
    region = page.region("Emergency kit")
    region.get_by_role("button", name="Download the emergency kit").click()
    form = region.get_by_role("form", name="Download the emergency kit")
    save = form.get_by_role("button", name="Save the kit")
    expect(save).to_be_disabled()
    form.get_by_role("textbox", name="Type EXPORT KEY to confirm").fill("export key")
    expect(save).to_be_disabled()
    form.get_by_role("textbox", name="Type EXPORT KEY to confirm").fill("EXPORT KEY")
    with page.page.expect_download() as saving:
        save.click()
    download = saving.value
    assert download.suggested_filename == "backups-emergency-kit.txt"
    kit = Path(download.path()).read_text()
    query = 'mutation { exportEmergencyKit(confirm: "EXPORT KEY") { kit } }'
    assert kit == run(execute(site, query))["exportEmergencyKit"]["kit"]
    assert "AGE-SECRET-KEY-1" in kit and "backups key import" in kit
    expect(region.get_by_role("status")).to_contain_text("keep it offline")
    assert "AGE-SECRET-KEY" not in page.page.content()  # saved from memory, never shown
