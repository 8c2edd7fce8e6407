"""Browse, Download and Restore of one item on the page, in a real Chromium against a real server
with the settings store and a folder source: into a folder and back by the breadcrumb, a page of
more than 100 items, one file downloaded byte for byte (from a restore point and from a local
copy, whose Restore waits for its import), and one file put back through the apply
dialog (its preview shows just that item) while a file changed since stays changed, from Browse
and from "Restore this" in the compare view."""

from __future__ import annotations

import re
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest

from server.storage.encryption import Keyring
from tests.support.api import create_and_wait, execute, update_settings
from tests.support.browser import AXE, expect, run, scan
from tests.support.config_file import write_config
from tests.support.in_process import InProcessServer
from tests.support.local_copies import exported_copy

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("browser-items")]

LOGO = bytes(range(256)) * 600  # 150 kB, not text
MANY = 105  # more than one page of items (100)


@pytest.fixture(scope="module")
def folder(root: Path) -> Path:
    """The folder source's folder."""
    return root / "site"


@pytest.fixture(scope="module")
def site_env(root: Path, folder: Path) -> dict[str, str]:
    """The settings store and the folder source `site`; a quick restart."""
    config = write_config(root, settings=True, page=False)
    (folder / "conf.d").mkdir()
    (folder / "conf.d" / "main.yaml").write_text("listen: 80\n")
    (folder / "conf.d" / "Zugänge.txt").write_text("alle\n")
    (folder / "media").mkdir()
    (folder / "media" / "logo.bin").write_bytes(LOGO)
    (folder / "notes.txt").write_text("first notes\n")
    (folder / "many").mkdir()
    for n in range(MANY):
        (folder / "many" / f"file-{n:03}.txt").write_text(f"{n}\n")
    return {"BACKUPS_CONFIG": str(config), "BACKUPS_RESTART_COMMAND": "echo restarted"}


def browse(page: Any, label: str) -> Any:
    """The dialog "Browse restore point" of the restore point `label`, at the sources."""
    page.row(label).get_by_role("button", name="Browse").click()
    dialog = page.page.get_by_role("dialog", name="Browse restore point")
    expect(dialog).to_be_visible()
    return dialog


def names(dialog: Any) -> Any:
    """The Items table's row headers: the names in the folder shown."""
    return dialog.get_by_role("table", name="Items").get_by_role("rowheader")


def item_row(dialog: Any, name: str) -> Any:
    return (
        dialog.get_by_role("table", name="Items")
        .get_by_role("row")
        .filter(has=dialog.page.get_by_role("rowheader", name=name, exact=True))
    )


def test_browse_into_a_folder_and_back_by_the_breadcrumb(open_page, site) -> None:
    label = f"to browse {uuid.uuid4().hex[:6]}"
    run(create_and_wait(site, label))
    page = open_page()
    page.sign_in(site.token)
    dialog = browse(page, label)
    crumbs = dialog.get_by_role("navigation", name="Breadcrumb")
    expect(names(dialog)).to_have_text(["settings", "site"])
    expect(crumbs).to_have_text("Sources")

    dialog.get_by_role("button", name="site", exact=True).click()
    expect(names(dialog)).to_have_text(["conf.d", "many", "media", "notes.txt"])
    expect(item_row(dialog, "conf.d")).to_contain_text("folder")
    dialog.get_by_role("button", name="conf.d", exact=True).click()
    expect(names(dialog)).to_have_text(["Zugänge.txt", "main.yaml"])
    expect(item_row(dialog, "Zugänge.txt")).to_contain_text("5 B")
    expect(crumbs).to_have_text(re.compile("Sources.*site.*conf.d"))
    expect(crumbs.locator("[aria-current]")).to_have_text("conf.d")
    page.shot("browse-folder")

    # Back up one level by the breadcrumb, then to the sources.
    crumbs.get_by_role("button", name="site", exact=True).click()
    expect(names(dialog)).to_have_text(["conf.d", "many", "media", "notes.txt"])
    expect(crumbs.locator("[aria-current]")).to_have_text("site")
    crumbs.get_by_role("button", name="Sources").click()
    expect(names(dialog)).to_have_text(["settings", "site"])
    dialog.get_by_role("button", name="settings", exact=True).click()
    expect(item_row(dialog, "audio.json")).to_contain_text("module")

    # A folder of more than one page: the first 100, then the rest on "Load more".
    crumbs.get_by_role("button", name="Sources").click()
    dialog.get_by_role("button", name="site", exact=True).click()
    dialog.get_by_role("button", name="many", exact=True).click()
    expect(names(dialog)).to_have_count(100)
    dialog.get_by_role("button", name="Load more").click()
    expect(names(dialog)).to_have_count(MANY)
    expect(names(dialog).last).to_have_text(f"file-{MANY - 1:03}.txt")
    expect(dialog.get_by_role("button", name="Load more")).to_have_count(0)

    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_have_count(0)


def test_download_one_file_the_same_bytes(open_page, site, tmp_path) -> None:
    label = f"to download from {uuid.uuid4().hex[:6]}"
    run(create_and_wait(site, label))
    page = open_page()
    page.sign_in(site.token)
    dialog = browse(page, label)
    dialog.get_by_role("button", name="site", exact=True).click()
    dialog.get_by_role("button", name="media", exact=True).click()
    with page.page.expect_download() as download_info:
        item_row(dialog, "logo.bin").get_by_role("button", name="Download").click()
    download = download_info.value
    assert download.suggested_filename == "logo.bin"
    target = tmp_path / "logo.bin"
    download.save_as(target)
    assert target.read_bytes() == LOGO

    # At the top of the breadcrumb, a whole source: a ZIP of its folder.
    dialog.get_by_role("navigation", name="Breadcrumb").get_by_role("button", name="Sources").click()
    with page.page.expect_download() as download_info:
        item_row(dialog, "site").get_by_role("button", name="Download").click()
    assert download_info.value.suggested_filename == "site.zip"
    archive = tmp_path / "site.zip"
    download_info.value.save_as(archive)
    with zipfile.ZipFile(archive) as zipped:
        assert zipped.read("media/logo.bin") == LOGO
        assert zipped.read("conf.d/Zugänge.txt") == b"alle\n"


def test_browse_a_local_copy_and_download_a_file_out_of_it(open_page, site, tmp_path) -> None:
    label = f"to copy {uuid.uuid4().hex[:6]}"
    point = run(create_and_wait(site, label))["restorePoint"]["id"]
    copy = run(exported_copy(site, point))
    # The restore point goes: whatever the dialog shows can only come out of the copy.
    deleted = run(execute(site, "mutation($id: ID!) { deleteRestorePoint(id: $id) { deletedId } }", id=point))
    assert deleted["deleteRestorePoint"]["deletedId"] == point
    page = open_page()
    page.sign_in(site.token)
    copy_row = page.region("Local copies").get_by_role("listitem").filter(has_text=copy["fileName"])
    copy_row.get_by_role("button", name="Browse").click()
    dialog = page.page.get_by_role("dialog", name="Browse local copy")
    expect(dialog).to_contain_text(copy["fileName"])
    crumbs = dialog.get_by_role("navigation", name="Breadcrumb")
    expect(names(dialog)).to_have_text(["settings", "site"])  # the copy's own sources

    dialog.get_by_role("button", name="site", exact=True).click()
    expect(names(dialog)).to_have_text(["conf.d", "many", "media", "notes.txt"])
    dialog.get_by_role("button", name="media", exact=True).click()
    expect(crumbs).to_have_text(re.compile("Sources.*site.*media"))
    expect(names(dialog)).to_have_text(["logo.bin"])
    row = item_row(dialog, "logo.bin")
    # An item goes back from a restore point: the copy must be imported first.
    expect(row.get_by_role("button", name="Restore")).to_be_disabled()
    expect(row.get_by_role("button", name="Restore")).to_have_accessible_description("Import the copy first")
    with page.page.expect_download() as download_info:
        row.get_by_role("button", name="Download").click()
    download = download_info.value
    assert download.suggested_filename == "logo.bin"
    target = tmp_path / "logo.bin"
    download.save_as(target)
    assert target.read_bytes() == LOGO
    page.shot("browse-local-copy")

    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_have_count(0)
    points = run(execute(site, "query($id: ID!) { restorePoint(id: $id) { id } }", id=point))
    assert points["restorePoint"] is None  # browsing imported nothing


def test_a_copy_this_server_cannot_decrypt_says_why(open_page, site, tmp_path) -> None:
    point = run(create_and_wait(site, f"to seal {uuid.uuid4().hex[:6]}"))["restorePoint"]["id"]
    plain = site.data_dir / "local-copies" / run(exported_copy(site, point))["fileName"]
    foreign = plain.with_name(plain.name.replace(".zip", "-foreign.zip.age"))
    with foreign.open("wb") as out:  # encrypted to a key this server does not hold
        Keyring(tmp_path / "another-server").encrypt(plain, out)
    try:
        page = open_page()
        page.sign_in(site.token)
        copy_row = page.region("Local copies").get_by_role("listitem").filter(has_text=foreign.name)
        copy_row.get_by_role("button", name="Browse").click()
        dialog = page.page.get_by_role("dialog", name="Browse local copy")
        expect(dialog.get_by_role("alert")).to_contain_text("identity")  # names this server's key
        expect(names(dialog)).to_have_count(0)
        dialog.get_by_role("button", name="Close").click()
        expect(dialog).to_have_count(0)
    finally:
        foreign.unlink()


def test_restore_one_file_and_the_rest_stays_as_it_is_now(open_page, site, folder) -> None:
    label = f"to restore from {uuid.uuid4().hex[:6]}"
    main, notes = folder / "conf.d" / "main.yaml", folder / "notes.txt"
    main.write_text("listen: 80\n")
    run(create_and_wait(site, label))
    main.write_text("listen: 8080\n")
    notes.write_text(f"notes written after {label}\n")
    page = open_page()
    page.sign_in(site.token)
    dialog = browse(page, label)
    dialog.get_by_role("button", name="site", exact=True).click()
    dialog.get_by_role("button", name="conf.d", exact=True).click()
    item_row(dialog, "main.yaml").get_by_role("button", name="Restore").click()

    apply = page.page.get_by_role("dialog", name="Apply restore point")
    expect(apply).to_contain_text("site/conf.d/main.yaml")
    changes = apply.get_by_role("list", name="Changes the apply makes")
    expect(changes.get_by_role("listitem")).to_have_count(1)
    expect(changes).to_contain_text("changed site/conf.d/main.yaml")
    expect(apply).to_contain_text("0 added, 0 removed, 1 changed")
    expect(apply.get_by_role("group", name="Sources to apply")).to_have_count(0)  # just the item
    safety = apply.get_by_role("checkbox", name="Create a safety restore point first")
    expect(safety).to_be_checked()
    apply_button = apply.get_by_role("button", name="Apply", exact=True)
    expect(apply_button).to_be_disabled()
    apply.get_by_role("textbox", name="Type APPLY to confirm").fill("APPLY")
    page.shot("browse-restore-preview")
    assert main.read_text() == "listen: 8080\n"  # nothing changed before the confirmation
    apply_button.click()

    expect(apply.get_by_role("status")).to_contain_text("The apply succeeded.")
    expect(apply).to_contain_text("Safety restore point")
    assert main.read_text() == "listen: 80\n"
    assert notes.read_text() == f"notes written after {label}\n"  # changed since, and stays so
    applies = run(
        execute(
            site,
            "{ operations(first: 1, kind: [APPLY_RESTORE_POINT]) { nodes { changes { added removed changed } } } }",
        )
    )
    assert applies["operations"]["nodes"][0]["changes"] == {"added": 0, "removed": 0, "changed": 1}
    points = run(execute(site, "{ restorePoints(first: 1) { nodes { origin } } }"))["restorePoints"]["nodes"]
    assert points[0]["origin"] == "SAFETY"
    apply.get_by_role("button", name="Close").click()
    expect(apply).to_have_count(0)
    expect(dialog).to_be_visible()  # back in the browse dialog, where the person was
    expect(names(dialog)).to_have_text(["Zugänge.txt", "main.yaml"])


def test_restore_this_from_the_compare_view_puts_back_the_newer_side(open_page, site, folder) -> None:
    tag = uuid.uuid4().hex[:6]
    older, newer = f"compared older {tag}", f"compared newer {tag}"
    main, notes = folder / "conf.d" / "main.yaml", folder / "notes.txt"
    main.write_text("listen: 80\n")
    notes.write_text("notes of the older\n")
    run(create_and_wait(site, older))
    main.write_text("listen: 8080\n")
    notes.write_text("notes of the newer\n")
    run(create_and_wait(site, newer))
    main.write_text("listen: 9090\n")  # both differ from the newer now
    notes.write_text("notes of now\n")
    page = open_page()
    page.sign_in(site.token)
    page.row(newer).get_by_role("button", name="Compare").click()
    compare = page.page.get_by_role("dialog", name="Compare restore points")
    expect(compare).to_contain_text(f"From {older} to {newer}")
    expect(compare).to_contain_text(f"Restore this puts back one item as {newer} has it")
    changes = compare.get_by_role("list", name="Changes between the restore points")
    expect(changes.get_by_role("button", name=re.compile("^Restore this"))).to_have_count(2)
    changes.get_by_role("button", name=f"Restore this: site/conf.d/main.yaml from {newer}").click()

    apply = page.page.get_by_role("dialog", name="Apply restore point")
    expect(apply).to_contain_text(f"Puts back site/conf.d/main.yaml as {newer} captured it")
    preview = apply.get_by_role("list", name="Changes the apply makes")
    expect(preview.get_by_role("listitem")).to_have_count(1)
    expect(preview).to_contain_text("changed site/conf.d/main.yaml")
    expect(apply).to_contain_text("0 added, 0 removed, 1 changed")
    expect(preview.get_by_role("button", name=re.compile("^Restore this"))).to_have_count(0)  # already one item
    apply.get_by_role("textbox", name="Type APPLY to confirm").fill("APPLY")
    assert main.read_text() == "listen: 9090\n"  # nothing changed before the confirmation
    apply.get_by_role("button", name="Apply", exact=True).click()

    expect(apply.get_by_role("status")).to_contain_text("The apply succeeded.")
    assert main.read_text() == "listen: 8080\n"  # as the newer has it, not the older
    assert notes.read_text() == "notes of now\n"  # differs too, and stays as it is now
    apply.get_by_role("button", name="Close").click()
    expect(apply).to_have_count(0)
    expect(compare).to_be_visible()  # back in the comparison


def test_a_viewer_browses_but_cannot_download_or_restore(open_page, site) -> None:
    label = f"seen by a viewer {uuid.uuid4().hex[:6]}"
    run(create_and_wait(site, label))
    page = open_page()
    page.sign_in(site.create_token(f"viewer-{uuid.uuid4().hex[:6]}", "viewer"))
    dialog = browse(page, label)
    dialog.get_by_role("button", name="site", exact=True).click()
    row = item_row(dialog, "notes.txt")
    expect(row.get_by_role("button", name="Download")).to_be_disabled()
    expect(row.get_by_role("button", name="Download")).to_have_accessible_description(re.compile("operator token"))
    expect(row.get_by_role("button", name="Restore")).to_be_disabled()


def test_narrow_keyboard_only_and_accessible(open_page, site: InProcessServer) -> None:
    label = f"narrow browse {uuid.uuid4().hex[:6]}"
    run(create_and_wait(site, label))
    page = open_page(width=360, height=740)
    page.sign_in(site.token)
    page.row(label).get_by_role("button", name="Browse").focus()
    page.page.keyboard.press("Enter")
    dialog = page.page.get_by_role("dialog", name="Browse restore point")
    expect(names(dialog)).to_have_text(["settings", "site"])
    dialog.get_by_role("button", name="site", exact=True).focus()
    page.page.keyboard.press("Enter")
    expect(names(dialog)).to_contain_text(["conf.d"])
    # The focus moves to where the dialog is now (the clicked button is gone with its rows).
    assert page.page.evaluate("document.activeElement.getAttribute('aria-current')") == "location"
    page.page.keyboard.press("Shift+Tab")  # to the breadcrumb's "Sources"
    page.page.keyboard.press("Enter")
    expect(names(dialog)).to_have_text(["settings", "site"])
    dialog.get_by_role("button", name="site", exact=True).click()
    dialog.get_by_role("button", name="conf.d", exact=True).click()
    expect(names(dialog)).to_have_count(2)
    assert page.page.evaluate("document.documentElement.scrollWidth") <= 360
    dialog_box = dialog.bounding_box()
    assert dialog_box["x"] >= 0 and dialog_box["x"] + dialog_box["width"] <= 360
    page.shot("browse-narrow")
    if AXE.is_file():
        assert scan(page) == []
    page.page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)


def settings(site: InProcessServer) -> dict[str, Any]:
    return {m["name"]: m["settings"] for m in run(execute(site, "{ modules { name settings } }"))["modules"]}


def applies(site: InProcessServer) -> int:
    query = "{ operations(first: 100, kind: [APPLY_RESTORE_POINT]) { totalCount } }"
    return run(execute(site, query))["operations"]["totalCount"]


def test_restore_one_settings_module_without_a_restart_and_a_conflict_first(open_page, site) -> None:
    label = f"settings to restore {uuid.uuid4().hex[:6]}"
    assert run(update_settings(site, "audio", {"marker": "then"}))["userErrors"] == []
    run(create_and_wait(site, label))
    assert run(update_settings(site, "audio", {"marker": "now"}))["userErrors"] == []
    others = {name: values for name, values in settings(site).items() if name != "audio"}
    page = open_page()
    page.sign_in(site.token)
    dialog = browse(page, label)
    dialog.get_by_role("button", name="settings", exact=True).click()
    item_row(dialog, "audio.json").get_by_role("button", name="Restore").click()
    apply = page.page.get_by_role("dialog", name="Apply restore point")
    expect(apply).to_contain_text("settings/audio.json")
    expect(apply).to_contain_text("(no restart)")
    changes = apply.get_by_role("list", name="Changes the apply makes")
    expect(changes.get_by_role("listitem")).to_have_count(1)
    changes.get_by_role("listitem").first.locator("summary").click()
    expect(changes).to_contain_text('"now" → "then"')
    apply.get_by_role("textbox", name="Type APPLY to confirm").fill("APPLY")

    # The setting changes after the preview: refused (CONFLICT), nothing started or changed, the
    # preview read again.
    before = applies(site)
    assert run(update_settings(site, "audio", {"marker": "meanwhile"}))["userErrors"] == []
    apply.get_by_role("button", name="Apply", exact=True).click()
    expect(apply.get_by_role("alert")).to_contain_text("CONFLICT")
    expect(changes).to_contain_text('"meanwhile" → "then"')
    assert settings(site)["audio"]["marker"] == "meanwhile"
    assert applies(site) == before

    apply.get_by_role("button", name="Apply", exact=True).click()
    expect(apply.get_by_role("status")).to_contain_text("The apply succeeded.")
    expect(apply.get_by_role("list", name="Log of the apply")).to_contain_text("No restart")
    after = settings(site)
    assert after["audio"]["marker"] == "then"
    assert {name: values for name, values in after.items() if name != "audio"} == others


def test_restore_this_from_a_whole_apply_preview_and_not_for_a_viewer(open_page, site, folder) -> None:
    tag = uuid.uuid4().hex[:6]
    older, newer = f"before the note {tag}", f"with the note {tag}"
    notes = folder / "notes.txt"
    notes.write_text("notes before\n")
    run(create_and_wait(site, older))
    notes.write_text(f"notes of {newer}\n")
    run(create_and_wait(site, newer))
    notes.write_text("notes of now\n")
    page = open_page()
    page.sign_in(site.token)
    page.row(older).get_by_role("button", name="Apply").click()
    whole = page.page.get_by_role("dialog", name="Apply restore point")
    preview = whole.get_by_role("list", name="Changes the apply makes")
    preview.get_by_role("button", name=f"Restore this: site/notes.txt from {older}").click()
    # The whole apply's dialog gives way to the item's: one apply dialog, for just that file.
    item = page.page.get_by_role("dialog", name="Apply restore point")
    expect(item).to_have_count(1)
    expect(item).to_contain_text(f"Puts back site/notes.txt as {older} captured it")
    expect(item.get_by_role("list", name="Changes the apply makes").get_by_role("listitem")).to_have_count(1)
    item.get_by_role("button", name="Cancel").click()
    expect(item).to_have_count(0)
    assert notes.read_text() == "notes of now\n"  # cancelled: nothing put back

    viewer = open_page()
    viewer.sign_in(site.create_token(f"viewer-{tag}", "viewer"))
    viewer.row(newer).get_by_role("button", name="Compare").click()
    compare = viewer.page.get_by_role("dialog", name="Compare restore points")
    restore = compare.get_by_role("button", name=f"Restore this: site/notes.txt from {newer}")
    expect(restore).to_be_disabled()
    expect(restore).to_have_accessible_description(re.compile("need an admin token"))
