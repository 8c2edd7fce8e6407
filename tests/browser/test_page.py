"""The reference page at / in a real Chromium (Debian's, headless), against a real in-process server
serving the built web/dist: the flows a person uses, driven by the fixed accessible names of
CONTRACT.md ("The page"), plus an axe-core scan. Screenshots of the main views go to
tests/screenshots/ (gitignored; `make screenshots`)."""

from __future__ import annotations

import hashlib
import re
import shutil
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.api import create_and_wait, execute, update_settings
from tests.support.browser import AXE, TIMEOUT_MS, Page, expect, run, scan
from tests.support.in_process import InProcessServer
from tests.support.local_copies import export_operation

# Its tests share a module-scoped server and browser: one xdist worker runs them all, so they
# are made once.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("browser-page")]


@pytest.fixture(scope="module")
def site_env() -> dict[str, str]:
    """Items are captured slowly enough to watch the progress, and an apply's restart takes a
    moment (so the page shows it)."""
    return {"BACKUPS_TEST_ENTRY_DELAY": "0.2", "BACKUPS_RESTART_COMMAND": "sleep 2; echo restarted"}


def local_copies(site: InProcessServer) -> list[dict[str, Any]]:
    return run(execute(site, "{ localCopies { id fileName path sizeBytes problem restorePointId } }"))["localCopies"]


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*")) if folder.exists() else []


def point_exists(site: InProcessServer, point_id: str) -> bool:
    return (
        run(execute(site, "query($id: ID!) { restorePoint(id: $id) { id } }", id=point_id))["restorePoint"] is not None
    )


def test_sign_in_create_and_watch_it_finish(open_page, site) -> None:
    page = open_page()
    page.sign_in(site.token)
    assert page.page.evaluate("sessionStorage.getItem('backups.token')") == site.token
    label = f"from the page {uuid.uuid4().hex[:6]}"
    page.page.get_by_role("button", name="Create restore point").click()
    page.page.get_by_role("textbox", name="Label").fill(label)
    page.page.get_by_role("textbox", name="Note").fill("made in the browser test")
    page.page.get_by_role("button", name="Create", exact=True).click()

    running = page.region("Running operations")
    bar = running.get_by_role("progressbar").first
    bar.wait_for()
    assert 0 <= int(bar.get_attribute("aria-valuenow")) <= 100
    expect(running.get_by_role("list", name=re.compile("^Log of")).first).to_contain_text("item", timeout=TIMEOUT_MS)
    page.shot("running-operation")

    completed = page.region("Completed operations")
    done = completed.get_by_role("listitem").filter(has_text=label)
    expect(done).to_contain_text("SUCCEEDED")
    expect(running.get_by_role("progressbar")).to_have_count(0)
    expect(page.row(label)).to_have_count(1)
    expect(page.row(label)).to_contain_text("made in the browser test")
    done.get_by_role("button", name="Show log").click()
    expect(done.get_by_role("list", name=re.compile("^Log of"))).to_contain_text("item")
    page.shot("main-view")

    # Kept for the browser session: a reload stays signed in.
    page.page.reload()
    page.page.get_by_text("Signed in as").wait_for()
    done = page.region("Completed operations").get_by_role("listitem").filter(has_text=label)
    done.get_by_role("button", name="Dismiss").click()
    expect(done).to_have_count(0)
    dismissed = run(
        execute(site, "{ operations(first: 5, includeDismissed: true) { nodes { dismissed restorePoint { label } } } }")
    )
    assert [op["dismissed"] for op in dismissed["operations"]["nodes"] if op["restorePoint"]["label"] == label] == [
        True
    ]


def test_a_label_too_long_is_shown_next_to_the_label(open_page, site) -> None:
    page = open_page()
    page.sign_in(site.token)
    before = run(execute(site, "{ restorePoints { totalCount } }"))["restorePoints"]["totalCount"]
    page.page.get_by_role("button", name="Create restore point").click()
    page.page.get_by_role("textbox", name="Label").fill("x" * 5000)
    page.page.get_by_role("button", name="Create", exact=True).click()
    error = page.page.locator("#create-label-errors")
    expect(error).to_contain_text("INVALID_INPUT")
    expect(page.page.get_by_role("textbox", name="Label")).to_have_attribute("aria-invalid", "true")
    assert run(execute(site, "{ restorePoints { totalCount } }"))["restorePoints"]["totalCount"] == before


def test_a_wrong_token_is_refused_with_a_clear_message(browser, site) -> None:
    context = browser.new_context()
    try:
        page = Page(context.new_page(), site.url)
        page.page.goto(site.url + "/")
        page.page.get_by_role("textbox", name="API token").fill("not-a-token")
        page.page.get_by_role("button", name="Sign in").click()
        expect(page.page.get_by_role("alert")).to_contain_text("That token was not accepted")
        page.page.get_by_role("button", name="Use another token").click()
        expect(page.page.get_by_role("textbox", name="API token")).to_be_visible()
        assert page.page.evaluate("sessionStorage.getItem('backups.token')") is None
        # The browser reports the refused request (401) itself; nothing else went wrong.
        assert [p for p in page.problems if "401" not in p] == []
    finally:
        context.close()


def test_export_then_download_the_same_bytes(open_page, site, tmp_path) -> None:
    label = f"to export {uuid.uuid4().hex[:6]}"
    point = run(create_and_wait(site, label))["restorePoint"]
    page = open_page()
    page.sign_in(site.token)
    page.row(label).get_by_role("button", name="Export").click()
    copies = page.region("Local copies")
    item = copies.get_by_role("listitem").filter(has_text=label)
    expect(item).to_have_count(1)
    copy = next(c for c in local_copies(site) if c["restorePointId"] == point["id"])
    with page.page.expect_download() as download_info:
        item.get_by_role("button", name="Download").click()
    target = tmp_path / "downloaded.zip"
    download_info.value.save_as(target)
    on_server = hashlib.sha256(Path(copy["path"]).read_bytes()).hexdigest()
    assert hashlib.sha256(target.read_bytes()).hexdigest() == on_server
    assert target.stat().st_size == copy["sizeBytes"]
    page.shot("local-copies")


def test_an_encrypted_export_downloads_as_an_age_file(open_page, site, tmp_path) -> None:
    label = f"to encrypt {uuid.uuid4().hex[:6]}"
    point = run(create_and_wait(site, label))["restorePoint"]
    page = open_page()
    page.sign_in(site.token)
    # Once the history shows it, the views above it have loaded: nothing shifts under the click
    # (a click landing beside the checkbox as the operations list grew left it unchecked).
    expect(page.row(label)).to_have_count(1)
    page.page.get_by_role("checkbox", name="Encrypt exports").check()
    page.row(label).get_by_role("button", name="Export").click()
    item = page.region("Local copies").get_by_role("listitem").filter(has_text=label)
    expect(item).to_have_count(1)
    expect(item).to_contain_text("(encrypted)")
    copy = next(c for c in local_copies(site) if c["restorePointId"] == point["id"])
    assert copy["fileName"].endswith(".zip.age"), copy
    with page.page.expect_download() as download_info:
        item.get_by_role("button", name="Download").click()
    target = tmp_path / "downloaded.zip.age"
    download_info.value.save_as(target)
    assert target.read_bytes().startswith(b"age-encryption.org/v1\n")  # the age format, not a ZIP
    assert target.read_bytes() == Path(copy["path"]).read_bytes()


def test_an_invalid_upload_shows_the_error_and_keeps_nothing(open_page, site, tmp_path) -> None:
    page = open_page()
    page.sign_in(site.token)
    before = local_copies(site)
    files_before = files_in(site.data_dir / "local-copies")
    bogus = tmp_path / "not-a-backup.zip"
    bogus.write_bytes(b"this is not a ZIP file at all\n" * 100)
    page.page.get_by_label("Upload a local copy").set_input_files(str(bogus))
    errors = page.region("Local copies").locator("#upload-errors")
    expect(errors).to_contain_text("INVALID_ARCHIVE")
    page.shot("upload-refused")
    assert local_copies(site) == before
    files_after = files_in(site.data_dir / "local-copies")
    assert files_after == files_before


def test_upload_with_progress_then_import_and_delete_copies(open_page, site, tmp_path) -> None:
    label = f"to upload {uuid.uuid4().hex[:6]}"
    point = run(create_and_wait(site, label))["restorePoint"]
    page = open_page()
    page.sign_in(site.token)
    page.row(label).get_by_role("button", name="Export").click()
    copies = page.region("Local copies")
    exported = copies.get_by_role("listitem").filter(has_text=label)
    expect(exported).to_have_count(1)
    copy = next(c for c in local_copies(site) if c["restorePointId"] == point["id"])
    upload = tmp_path / "uploaded-copy.zip"
    shutil.copyfile(copy["path"], upload)
    # Delete the exported copy from the page, and the restore point, so that importing brings it back.
    exported.get_by_role("button", name="Delete").click()
    expect(exported).to_have_count(0)
    assert not Path(copy["path"]).exists()
    page.row(label).get_by_role("button", name="Delete").click()
    page.row(label).get_by_role("button", name="Delete for good").click()
    expect(page.row(label)).to_have_count(0)

    # A slow upload shows its progress.
    network = page.page.context.new_cdp_session(page.page)
    network.send("Network.enable")
    conditions = {"offline": False, "latency": 0, "downloadThroughput": -1}
    network.send("Network.emulateNetworkConditions", {**conditions, "uploadThroughput": 1000})
    page.page.get_by_label("Upload a local copy").set_input_files(str(upload))
    bar = copies.get_by_role("progressbar", name="Upload progress")
    bar.wait_for()
    assert 0 <= int(bar.get_attribute("aria-valuenow")) <= 100
    page.shot("uploading")
    expect(copies.get_by_role("status")).to_contain_text("Uploaded uploaded-copy")
    network.send("Network.emulateNetworkConditions", {**conditions, "uploadThroughput": -1})
    expect(bar).to_have_count(0)
    uploaded = copies.get_by_role("listitem").filter(has_text="uploaded-copy")
    expect(uploaded).to_have_count(1)
    assert [c["restorePointId"] for c in local_copies(site) if "uploaded-copy" in c["fileName"]] == [point["id"]]

    uploaded.get_by_role("button", name="Import").click()
    expect(page.row(label)).to_have_count(1)
    expect(page.row(label)).to_contain_text("imported")
    imported = run(execute(site, "query($id: ID!) { restorePoint(id: $id) { origin } }", id=point["id"]))
    assert imported["restorePoint"]["origin"] == "IMPORTED"
    expect(uploaded).to_contain_text(f"Holds the restore point {label}")


def test_apply_with_confirmation_through_the_restart(open_page, site) -> None:
    label = f"to apply {uuid.uuid4().hex[:6]}"
    run(update_settings(site, "audio", {"marker": "before"}))
    run(create_and_wait(site, label))
    run(update_settings(site, "audio", {"marker": "after"}))
    page = open_page()
    # The page's websockets go through the test, which can drop them as a restarting server would.
    sockets: list[Any] = []

    def through_the_test(socket: Any) -> None:
        socket.connect_to_server()
        sockets.append(socket)

    page.page.route_web_socket(re.compile(r"/graphql$"), through_the_test)
    page.sign_in(site.token)
    page.row(label).get_by_role("button", name="Apply").click()
    dialog = page.page.get_by_role("dialog", name="Apply restore point")
    safety = dialog.get_by_role("checkbox", name="Create a safety restore point first")
    expect(safety).to_be_checked()
    apply_button = dialog.get_by_role("button", name="Apply", exact=True)
    expect(apply_button).to_be_disabled()
    confirm = dialog.get_by_role("textbox", name="Type APPLY to confirm")
    confirm.fill("apply")
    expect(apply_button).to_be_disabled()
    confirm.fill("APPLY")
    expect(apply_button).to_be_enabled()
    page.shot("apply-dialog")
    apply_button.click()

    log = dialog.get_by_role("list", name="Log of the apply")
    expect(log).to_contain_text("after an item")
    connections = len(sockets)
    sockets[-1].close(code=1012, reason="restarting")  # the connection is lost mid-apply
    status = dialog.get_by_role("status")
    expect(status).to_contain_text("RESTARTING")
    page.shot("apply-restarting")
    expect(status).to_contain_text("The apply succeeded.")
    expect(log).to_contain_text("restart> restarted")
    assert len(sockets) > connections  # graphql-ws connected again
    expect(dialog.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100")
    expect(dialog).to_contain_text("Safety restore point")
    settings = run(execute(site, "{ modules { name settings } }"))["modules"]
    assert {m["name"]: m["settings"] for m in settings}["audio"]["marker"] == "before"
    points = run(execute(site, "{ restorePoints(first: 3) { nodes { origin } } }"))["restorePoints"]["nodes"]
    assert points[0]["origin"] == "SAFETY"
    # Every line of the stored log is shown once, in order: after the reconnect the log went on
    # after the last line seen, neither losing nor repeating lines.
    applies = run(execute(site, "{ operations(first: 1, kind: [APPLY_RESTORE_POINT]) { nodes { log { message } } } }"))
    stored = applies["operations"]["nodes"][0]["log"]
    assert log.locator(".message").all_inner_texts() == [line["message"] for line in stored][-200:]
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_have_count(0)


def test_a_viewer_token_sees_disabled_buttons_with_the_reason(open_page, site) -> None:
    label = f"seen by a viewer {uuid.uuid4().hex[:6]}"
    point = run(create_and_wait(site, label))["restorePoint"]
    run(export_operation(site, point["id"]))
    viewer = site.create_token(f"viewer-{uuid.uuid4().hex[:6]}", "viewer")
    page = open_page()
    page.sign_in(viewer)
    create = page.page.get_by_role("button", name="Create restore point")
    expect(create).to_be_disabled()
    expect(create).to_have_accessible_description(re.compile("need an operator token"))
    row = page.row(label)
    for name in ("Export", "Apply", "Delete"):
        expect(row.get_by_role("button", name=name)).to_be_disabled()
    expect(row.get_by_role("button", name="Compare")).to_be_enabled()  # reading is a viewer's
    expect(row.get_by_role("button", name="Apply")).to_have_accessible_description(re.compile("need an admin token"))
    expect(page.page.get_by_label("Upload a local copy")).to_be_disabled()
    copy = page.region("Local copies").get_by_role("listitem").filter(has_text=label)
    for name in ("Download", "Import", "Delete"):
        expect(copy.get_by_role("button", name=name)).to_be_disabled()
    page.shot("viewer")

    operator = site.create_token(f"operator-{uuid.uuid4().hex[:6]}", "operator")
    page = open_page()
    page.sign_in(operator)
    expect(page.page.get_by_role("button", name="Create restore point")).to_be_enabled()
    expect(page.row(label).get_by_role("button", name="Export")).to_be_enabled()
    expect(page.row(label).get_by_role("button", name="Apply")).to_be_disabled()
    expect(page.row(label).get_by_role("button", name="Delete")).to_be_disabled()


def test_delete_a_restore_point_after_a_second_click(open_page, site) -> None:
    label = f"to delete {uuid.uuid4().hex[:6]}"
    point = run(create_and_wait(site, label))["restorePoint"]
    page = open_page()
    page.sign_in(site.token)
    page.row(label).get_by_role("button", name="Delete").click()
    assert point_exists(site, point["id"])
    page.row(label).get_by_role("button", name="Delete for good").click()
    expect(page.row(label)).to_have_count(0)
    assert not point_exists(site, point["id"])


def restore_point(site: InProcessServer, point_id: str) -> dict[str, Any]:
    query = "query($id: ID!) { restorePoint(id: $id) { label note pinned } }"
    return run(execute(site, query, id=point_id))["restorePoint"]


def test_pin_edit_and_filter_the_history(open_page, site) -> None:
    tag = uuid.uuid4().hex[:6]
    kept = run(create_and_wait(site, f"keep me {tag}"))["restorePoint"]
    other = run(create_and_wait(site, f"edit me {tag}"))["restorePoint"]
    page = open_page()
    page.sign_in(site.token)

    page.row(f"keep me {tag}").get_by_role("button", name="Pin").click()
    expect(page.row(f"keep me {tag}")).to_contain_text("(pinned)")
    assert restore_point(site, kept["id"])["pinned"] is True
    page.page.get_by_role("checkbox", name="Pinned only").check()
    expect(page.row(f"keep me {tag}")).to_have_count(1)
    expect(page.row(f"edit me {tag}")).to_have_count(0)
    page.page.get_by_role("checkbox", name="Pinned only").uncheck()
    page.page.get_by_role("searchbox", name="Search").fill(f"edit me {tag}")
    expect(page.row(f"keep me {tag}")).to_have_count(0)
    expect(page.row(f"edit me {tag}")).to_have_count(1)
    page.page.get_by_role("combobox", name="Origin").select_option("IMPORTED")
    expect(page.row(f"edit me {tag}")).to_have_count(0)  # it was made by hand
    page.page.get_by_role("combobox", name="Origin").select_option("MANUAL")
    expect(page.row(f"edit me {tag}")).to_have_count(1)

    # A refused edit (an empty label) shows the error by the label and changes nothing.
    page.row(f"edit me {tag}").get_by_role("button", name="Edit").click()
    form = page.page.get_by_role("form", name=f"Edit edit me {tag}")
    form.get_by_role("textbox", name="Label").fill("")
    form.get_by_role("button", name="Save").click()
    expect(form).to_contain_text("INVALID_INPUT")
    assert restore_point(site, other["id"]) == {"label": f"edit me {tag}", "note": None, "pinned": False}
    form.get_by_role("textbox", name="Label").fill(f"edited {tag}")
    form.get_by_role("textbox", name="Note").fill("renamed in the page")
    form.get_by_role("button", name="Save").click()
    expect(form).to_have_count(0)
    assert restore_point(site, other["id"]) == {
        "label": f"edited {tag}",
        "note": "renamed in the page",
        "pinned": False,
    }
    page.page.get_by_role("searchbox", name="Search").fill(tag)
    expect(page.row(f"edited {tag}")).to_contain_text("renamed in the page")

    page.row(f"keep me {tag}").get_by_role("button", name="Unpin").click()
    expect(page.row(f"keep me {tag}")).not_to_contain_text("(pinned)")
    assert restore_point(site, kept["id"])["pinned"] is False


def test_create_a_restore_point_that_expires_and_see_when(open_page, site) -> None:
    tag = uuid.uuid4().hex[:6]
    page = open_page()
    page.sign_in(site.token)
    page.page.get_by_role("button", name="Create restore point").click()
    page.page.get_by_role("textbox", name="Label").fill(f"before the update {tag}")
    page.page.get_by_role("combobox", name="Expires after").select_option("7")
    page.page.get_by_role("button", name="Create", exact=True).click()
    expect(page.row(f"before the update {tag}")).to_contain_text("expires in 7 days")
    page.shot("expiring-restore-point")
    query = "query($s: String) { restorePoints(search: $s) { nodes { expiresAt } } }"
    [point] = run(execute(site, query, s=tag))["restorePoints"]["nodes"]
    ahead = datetime.fromisoformat(point["expiresAt"]) - datetime.now(UTC)
    assert timedelta(days=6, hours=23) < ahead <= timedelta(days=7)


def test_readable_at_360_pixels_and_keyboard_operable(open_page, site) -> None:
    run(create_and_wait(site, f"narrow {uuid.uuid4().hex[:6]}"))
    page = open_page(width=360, height=740)
    page.page.goto(site.url + "/")
    # Sign in with the keyboard only.
    for _ in range(3):
        page.page.keyboard.press("Tab")
        if page.page.evaluate("document.activeElement.id") == "token":
            break
    assert page.page.evaluate("document.activeElement.id") == "token"
    page.page.keyboard.type(site.token)
    page.page.keyboard.press("Enter")
    page.page.get_by_text("Signed in as").wait_for()
    page.page.get_by_role("button", name="Create restore point").focus()
    page.page.keyboard.press("Enter")
    expect(page.page.get_by_role("textbox", name="Label")).to_be_visible()
    assert page.page.evaluate("document.documentElement.scrollWidth") <= 360
    page.shot("narrow")


def test_no_serious_accessibility_violation(open_page, site) -> None:
    if not AXE.is_file():
        pytest.skip("axe-core is not installed in web/node_modules (cd web && npm ci)")
    label = f"for axe {uuid.uuid4().hex[:6]}"
    run(create_and_wait(site, label))
    page = open_page()
    page.sign_in(site.token)
    expect(page.row(label)).to_have_count(1)
    violations = scan(page)
    page.page.get_by_role("button", name="Create restore point").click()
    page.row(label).get_by_role("button", name="Apply").click()
    page.page.get_by_role("dialog", name="Apply restore point").wait_for()
    violations += scan(page)
    sign_in = open_page(width=360, height=740)
    sign_in.page.goto(site.url + "/")
    violations += scan(sign_in)
    assert violations == [], violations


def test_the_page_and_its_assets_are_served(site, built_page) -> None:
    page = httpx.get(site.url + "/")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-cache"
    asset = re.search(r'src="(/assets/[^"]+\.js)"', page.text).group(1)
    script = httpx.get(site.url + asset)
    assert script.status_code == 200 and "immutable" in script.headers["cache-control"]
    assert httpx.get(site.url + "/assets/nothing-here.js").status_code == 404
    assert httpx.get(site.url + "/assets/..%2F..%2Fpackage.json").status_code == 404
    assert httpx.get(site.url + "/graphql", headers={"Accept": "text/html"}).status_code == 200  # GraphiQL stays


# The page's own JavaScript, gzipped, as a browser fetches it for the views a user opens first
# (GraphiQL at /graphql is a page of its own, with its editor, and is not counted).
JS_BUDGET_GZIPPED = 200 * 1024


def test_the_page_loads_at_most_200_kb_of_javascript_gzipped(open_page, site) -> None:
    import gzip

    page = open_page()
    scripts: list[str] = []
    page.page.on("response", lambda answer: answer.url.endswith(".js") and scripts.append(answer.url))
    page.sign_in(site.token)
    expect(page.region("Schedules")).to_be_visible()
    page.region("Schedules").get_by_role("button", name="New schedule").click()
    expect(page.region("Schedules").get_by_role("form", name="New schedule")).to_be_visible()
    assert scripts, "no script was loaded"
    sizes = {url.rsplit("/", 1)[-1]: len(gzip.compress(httpx.get(url).content, 9)) for url in set(scripts)}
    total = sum(sizes.values())
    print(f"the page's JavaScript: {total / 1024:.1f} kB gzipped in {len(sizes)} files {sorted(sizes.items())}")
    assert total <= JS_BUDGET_GZIPPED, sizes
