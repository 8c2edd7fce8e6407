"""Issue 28 items 6 and 7 in a real Chromium: every view and dialog of the page at desktop width
(1280x800) and on a phone (390x844), with real data (restore points, operations, a schedule, a
location with a copy): nothing scrolls sideways, the tables become lists of cards on a phone
(each value with its column's name, the table's roles and names kept), the apply dialog fits
with its buttons reachable, and axe-core finds no serious or critical violation. Each view is
saved as a screenshot (`make screenshots` copies a few into docs/)."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.support.api import create_and_wait, execute, update_settings, wait_for_operation
from tests.support.browser import AXE, Page, expect, run, scan
from tests.support.config_file import Share, write_config
from tests.support.schedules import RUN, create_schedule

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("browser-phone")]  # one server and its data for both widths

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
TAG = uuid.uuid4().hex[:6]
OLDER, NEWER, SHARED = f"before the speaker upgrade {TAG}", f"after the upgrade {TAG}", f"kept off-site {TAG}"

# What sticks out sideways: the document's overflow, and every element that scrolls sideways
# itself (a table in a scrolling box, a diff, a dialog) or reaches past the viewport's edges.
OVERFLOW = """() => {
  const width = window.innerWidth;
  const out = [];
  const name = (e) => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') +
    (e.className && typeof e.className === 'string' ? '.' + e.className.trim().split(/\\s+/).join('.') : '') +
    ' "' + (e.textContent || '').trim().slice(0, 40) + '"';
  const scope = document.querySelector('dialog[open]') || document.body;
  for (const e of scope.querySelectorAll('*')) {
    const box = e.getBoundingClientRect();
    if (box.width === 0 || box.height === 0) continue;
    const style = getComputedStyle(e);
    if ((style.overflowX === 'auto' || style.overflowX === 'scroll') && e.scrollWidth > e.clientWidth + 1)
      out.push('scrolls sideways: ' + name(e) + ' ' + e.scrollWidth + ' > ' + e.clientWidth);
    else if (box.right > width + 1 || box.left < -1)
      out.push('past the edge: ' + name(e) + ' ' + Math.round(box.left) + '..' + Math.round(box.right));
  }
  const page = document.scrollingElement;
  if (page.scrollWidth > width) out.unshift('the page scrolls sideways: ' + page.scrollWidth + ' > ' + width);
  return out.slice(0, 12);
}"""

# How the table "Restore points" is laid out: its rows' display, whether the column headers
# show, whether a row's cells stack, and the label each value shows before it.
POINTS_LAYOUT = """(table) => {
  const row = table.tBodies[0].rows[0];
  const cells = [...row.cells];
  const boxes = cells.map((c) => c.getBoundingClientRect());
  return {
    display: getComputedStyle(row).display,
    headersShown: table.tHead.getBoundingClientRect().height > 1,
    stacked: boxes.every((b, i) => i === 0 || b.top >= boxes[i - 1].bottom - 1),
    rowWidth: row.getBoundingClientRect().width,
    labels: cells.slice(1).map((c) => getComputedStyle(c, '::before').content),
  };
}"""


@pytest.fixture(scope="module")
def site_env(root: Path) -> dict[str, str]:
    """The settings store, a folder source, a folder location `share` and a notification target."""
    hook = '\n[[notifications]]\nname = "ops-webhook"\nurl = "json://127.0.0.1:9/hook"\nevents = ["OPERATION_FAILED"]\n'
    config = write_config(root, Share(root / "share"), settings=True, page=False, extra=hook)
    (root / "site" / "conf.d").mkdir(parents=True, exist_ok=True)
    (root / "site" / "conf.d" / "living-room-speaker-equalizer-presets.conf").write_text("bass = 2\n")
    (root / "site" / "app.conf").write_text("volume = 3\n")
    return {"BACKUPS_CONFIG": str(config), "BACKUPS_RESTART_COMMAND": "echo restarted"}


@pytest.fixture(scope="module")
def data(site, root: Path) -> None:
    """Three restore points (their settings and a file changed between them, the newest one with
    a copy at the share), the operations that made them, and a schedule copying to the share that
    has run three times."""
    run(update_settings(site, "audio", {"marker": "before", "volume": 3}))
    run(create_and_wait(site, OLDER))
    run(update_settings(site, "audio", {"marker": "after", "volume": 11}))
    (root / "site" / "app.conf").write_text("volume = 11\nbass = 4\n")
    run(create_and_wait(site, NEWER))
    point = run(create_and_wait(site, SHARED))["restorePoint"]
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
    schedule = run(
        create_schedule(
            site,
            name="nightly",
            cron="30 2 * * *",
            timeZone="Europe/Berlin",
            copyToLocations=["share"],
            retention={"keepLast": 2},
        )
    )
    for _ in range(3):  # its retention preview then keeps two and deletes one
        op = run(execute(site, RUN, id=schedule["id"]))["runSchedule"]["operation"]
        assert run(wait_for_operation(site, op["id"]))["status"] == "SUCCEEDED"


def sideways(page: Page) -> list[str]:
    return page.page.evaluate(OVERFLOW)


def violations(page: Page) -> list[str]:
    return scan(page) if AXE.is_file() else []


def check(page: Page, view: str, kind: str, top: Any | None = None) -> None:
    """The view as it is: nothing sideways, no serious axe violation; its screenshot (the
    viewport, with `top` scrolled to the top of it when given)."""
    assert sideways(page) == [], view
    assert violations(page) == [], view
    if top is not None:
        top.evaluate("(e) => e.scrollIntoView({ block: 'start' })")
    page.shot(f"{kind}-{view}", full_page=False)


@pytest.mark.parametrize("kind", ["desktop", "phone"])
def test_every_view_fits_at_desktop_and_phone_width(open_page, site, data, kind: str) -> None:
    size = PHONE if kind == "phone" else DESKTOP
    page = open_page(**size)
    page.sign_in(site.token)
    table = page.page.get_by_role("table", name="Restore points")
    expect(page.row(SHARED)).to_contain_text("share")
    expect(page.region("Locations").get_by_role("listitem", name="Location share")).to_contain_text("reachable")
    check(page, "main", kind)
    page.shot(f"{kind}-whole", full_page=True)

    # The restore points: on a phone a list of cards, each value with its column's name; the
    # table's roles and names stay (a row, its cells, its buttons).
    layout = table.evaluate(POINTS_LAYOUT)
    if kind == "phone":
        assert layout["display"] != "table-row" and not layout["headersShown"] and layout["stacked"], layout
        assert layout["rowWidth"] <= size["width"], layout
        shown = [re.match(r'"([^"]*?):? ?"', label) for label in layout["labels"]]
        assert [m and m[1] for m in shown][:4] == ["Created", "Origin", "Size", "Copies at"], layout
    else:
        assert layout["display"] == "table-row" and layout["headersShown"], layout
    # Chromium's own accessibility tree (not Playwright's reading of the tags): still a table
    # with rows, cells and column headers, whatever the CSS makes of it.
    roles = accessible_roles(page)
    assert ("table", "Restore points") in roles and ("columnheader", "Created") in roles
    assert {role for role, _ in roles} >= {"row", "rowheader", "cell"}
    row = page.row(SHARED)
    expect(row.get_by_role("rowheader")).to_contain_text(SHARED)
    for action in ("Apply", "Browse", "Compare", "Export", "Delete"):
        expect(row.get_by_role("button", name=action, exact=True)).to_be_visible()
    check(page, "points", kind, top=page.page.locator("#points-heading"))

    # Recent activity, a log open.
    completed = page.region("Completed operations")
    done = completed.get_by_role("listitem").filter(has_text=NEWER).first
    done.get_by_role("button", name="Show log").click()
    expect(done.get_by_role("list", name=re.compile("^Log of"))).to_be_visible()
    check(page, "operations", kind, top=completed)

    # Locations and local copies.
    check(page, "locations", kind, top=page.region("Local copies"))

    # Schedules: the schedule in words, its retention preview, and the form for a new one.
    schedules = page.region("Schedules")
    nightly = schedules.get_by_role("listitem", name="Schedule nightly")
    expect(nightly).to_contain_text("daily at 02:30, Europe/Berlin")
    nightly.get_by_role("button", name="Retention preview").click()
    expect(nightly.get_by_role("table", name="Retention preview of nightly").get_by_role("row")).not_to_have_count(0)
    schedules.get_by_role("button", name="New schedule").click()
    expect(schedules.get_by_role("form", name="New schedule")).to_be_visible()
    check(page, "schedules", kind, top=schedules)

    # Notifications, tokens (one made: its secret shown once), the emergency kit's form.
    expect(page.region("Notifications")).to_contain_text("ops-webhook")
    tokens = page.region("Tokens")
    form = tokens.get_by_role("form", name="New token")
    form.get_by_role("textbox", name="Token name").fill(f"phone-{kind}-{TAG}")
    form.get_by_role("button", name="Create token").click()
    expect(form.get_by_role("textbox", name=f"Secret of phone-{kind}-{TAG}")).to_be_visible()
    kit = page.region("Emergency kit")
    kit.get_by_role("button", name="Download the emergency kit").click()
    expect(kit.get_by_role("form", name="Download the emergency kit")).to_be_visible()
    check(page, "settings", kind, top=page.region("Notifications"))

    # The dialogs: compare, browse (a folder open), apply with its preview.
    page.row(NEWER).get_by_role("button", name="Compare").click()
    compare = page.page.get_by_role("dialog", name="Compare restore points")
    compare.get_by_role("combobox").select_option(
        label=compare.get_by_role("option").filter(has_text=OLDER).inner_text()
    )
    changes = compare.get_by_role("list", name="Changes between the restore points")
    change = changes.get_by_role("listitem").filter(has_text="site/app.conf")
    change.locator("summary").click()
    expect(changes).to_contain_text("+volume = 11")
    fits(page, compare, size)
    check(page, "compare", kind)
    compare.get_by_role("button", name="Close").click()
    expect(compare).to_have_count(0)

    page.row(NEWER).get_by_role("button", name="Browse").click()
    browse = page.page.get_by_role("dialog", name="Browse restore point")
    browse.get_by_role("button", name="site", exact=True).click()
    browse.get_by_role("button", name="conf.d", exact=True).click()
    items = browse.get_by_role("table", name="Items")
    expect(items.get_by_role("row").filter(has_text="living-room-speaker-equalizer-presets.conf")).to_have_count(1)
    fits(page, browse, size)
    check(page, "browse", kind)
    page.page.keyboard.press("Escape")
    expect(browse).to_have_count(0)

    apply_dialog(page, size, kind)


def apply_dialog(page: Page, size: dict[str, int], kind: str) -> None:
    """The apply dialog with its preview: it fits the viewport, confirmed by the keyboard; with
    every change open it is taller than a phone's screen and scrolls inside itself, its buttons
    still reached by the keyboard and by scrolling."""
    page.row(OLDER).get_by_role("button", name="Apply").click()
    dialog = page.page.get_by_role("dialog", name="Apply restore point")
    preview = dialog.get_by_role("list", name="Changes the apply makes")
    expect(preview.get_by_role("listitem")).to_have_count(2)
    preview.get_by_role("listitem").filter(has_text="app.conf").locator("summary").click()
    expect(preview).to_contain_text("-volume = 11")
    fits(page, dialog, size)
    confirm = dialog.get_by_role("textbox", name="Type APPLY to confirm")
    confirm.focus()
    page.page.keyboard.type("APPLY")
    page.page.keyboard.press("Tab")
    apply_button = dialog.get_by_role("button", name="Apply", exact=True)
    cancel = dialog.get_by_role("button", name="Cancel")
    expect(apply_button).to_be_focused()
    expect(apply_button).to_be_enabled()
    expect(apply_button).to_be_in_viewport()
    check(page, "apply", kind)

    preview.get_by_role("listitem").filter(has_text="audio.json").locator("summary").click()
    expect(preview).to_contain_text('"after" → "before"')
    fits(page, dialog, size)
    dialog.evaluate("(d) => { d.scrollTop = 0; }")
    if kind == "phone":  # taller than the screen: the end of the dialog is out of sight, then reached
        assert dialog.evaluate("(d) => d.scrollHeight > d.clientHeight")
        expect(cancel).not_to_be_in_viewport(ratio=1)
    confirm.focus()
    page.page.keyboard.press("Tab")
    expect(apply_button).to_be_focused()
    expect(apply_button).to_be_in_viewport()
    page.page.keyboard.press("Tab")
    expect(cancel).to_be_focused()
    expect(cancel).to_be_in_viewport()
    dialog.evaluate("(d) => { d.scrollTop = 0; }")
    cancel.scroll_into_view_if_needed()
    expect(cancel).to_be_in_viewport()
    assert sideways(page) == []
    assert violations(page) == []
    preview.scroll_into_view_if_needed()
    page.shot(f"{kind}-apply-preview", full_page=False)
    cancel.click()
    expect(dialog).to_have_count(0)


def accessible_roles(page: Page) -> set[tuple[str, str]]:
    """Each (role, name) of Chromium's accessibility tree of the page (DevTools protocol)."""
    session = page.page.context.new_cdp_session(page.page)
    try:
        nodes = session.send("Accessibility.getFullAXTree")["nodes"]
    finally:
        session.detach()
    return {(n.get("role", {}).get("value", ""), n.get("name", {}).get("value", "")) for n in nodes}


def fits(page: Page, dialog: Any, size: dict[str, int]) -> None:
    box = dialog.bounding_box()
    assert box is not None
    assert box["x"] >= 0 and box["y"] >= 0, box
    assert box["x"] + box["width"] <= size["width"] and box["y"] + box["height"] <= size["height"], box
