"""Long log lines in a real Chromium: an apply that changes 250 files at long paths logs 200
lines of ~250 characters each ("Changed: site/…"), more than the log shows whole (200 lines), so
the log is windowed. Each row is measured as drawn: a long line wraps onto as many lines as it
needs and is read whole, where the page used to cut it to one 18 px line; shown after the fact
and followed live, where the newest line stays whole in view."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.api import create_and_wait, execute, wait_for_operation
from tests.support.browser import expect, run
from tests.support.in_process import InProcessServer

pytestmark = pytest.mark.slow

FILES = 250
# Five directories of 40 characters: each changed path is ~240 characters, two to three lines
# of the log at the page's width and more at 360 pixels.
DEEP = "/".join(f"a-directory-whose-name-goes-on-{n}-and-on" for n in range(5))
APPLY = """
mutation($id: ID!, $confirm: String!) {
  applyRestorePoint(restorePointId: $id, confirm: $confirm, createSafetyRestorePoint: false) {
    operation { id } userErrors { code message }
  }
}
"""
ROW_PX = 18  # one line of a log row (.log li's line-height)

# Where a row is, against its scrolling box: whether it lies wholly inside the box, and whether
# its text overflows its own width (cut) or the box scrolls sideways.
GEOMETRY = """
(row) => {
  const box = row.closest('.log-scroll');
  const r = row.getBoundingClientRect();
  const b = box.getBoundingClientRect();
  return {
    height: r.height,
    rowTop: r.top - b.top,
    rowBottom: r.bottom - b.top,
    scrollTop: box.scrollTop,
    scrollHeight: box.scrollHeight,
    clientHeight: box.clientHeight,
    inside: r.top >= b.top - 0.5 && r.bottom <= b.bottom + 0.5 && r.left >= b.left - 0.5 && r.right <= b.right + 0.5,
    cut: row.scrollWidth > row.clientWidth + 0.5 || box.scrollWidth > box.clientWidth + 0.5,
    atEnd: box.scrollTop + box.clientHeight >= box.scrollHeight - 1,
  };
}
"""


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("log") / "site"


@pytest.fixture(scope="module")
def site(folder: Path, built_page: None) -> Iterator[InProcessServer]:
    (folder / DEEP).mkdir(parents=True)
    write_files(folder, "first")
    config = folder.parent / "backups.toml"
    config.write_text(f'[[sources]]\nname = "site"\nkind = "directory"\npath = "{folder}"\n')
    proc = InProcessServer(
        data_dir=folder.parent / "data",
        env_overrides={"BACKUPS_CONFIG": str(config), "BACKUPS_RESTART_COMMAND": "echo restarted"},
    ).start()
    yield proc
    proc.close()


def write_files(folder: Path, content: str) -> None:
    for n in range(FILES):
        (folder / DEEP / f"setting-{n:03}-of-the-long-line-test.conf").write_text(f"{content} {n}\n")


def point_to_apply(site: InProcessServer, folder: Path) -> dict[str, Any]:
    """A restore point whose apply changes every file (the files are rewritten after it)."""
    write_files(folder, f"before {uuid.uuid4().hex[:6]}")
    point = run(create_and_wait(site, f"long paths {uuid.uuid4().hex[:6]}"))["restorePoint"]
    write_files(folder, f"after {uuid.uuid4().hex[:6]}")
    return point


def stored_lines(site: InProcessServer, op_id: str) -> list[str]:
    query = "query($id: ID!) { operation(id: $id) { log(first: 1000) { message } } }"
    return [line["message"] for line in run(execute(site, query, id=op_id))["operation"]["log"]]


# Pages through the log as a reader would (a box's height at a time, a frame or two for the rows
# drawn to be measured) until the row at `position` is drawn, then scrolls it to the top.
REVEAL = """
async (list, position) => {
  const box = list.parentElement;
  const frame = () => new Promise((done) => requestAnimationFrame(() => done()));
  for (let step = 0; step < 2000; step++) {
    const row = list.querySelector(`li[aria-posinset="${position}"]`);
    if (row) {
      row.scrollIntoView({ block: "start" });
      return true;
    }
    const drawn = [...list.querySelectorAll("li[aria-posinset]")].map((li) => Number(li.getAttribute("aria-posinset")));
    box.scrollTop += (position > Math.max(...drawn) ? 1 : -1) * box.clientHeight;
    await frame();
    await frame();
  }
  return false;
}
"""


def reveal(log: Any, position: int) -> Any:
    """The log's row at `position` (1-based), paged to and scrolled to the top of the box."""
    assert log.evaluate(REVEAL, position)
    return log.locator(f'li[aria-posinset="{position}"]')


def wait_for_geometry(page: Any, row: Any, condition: str) -> None:
    """Waits until the row's geometry (GEOMETRY's `g`) meets `condition`; on a timeout the
    failure says where the row and the box were, so that a failure names its cause."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.page.wait_for_function(
            f"(row) => {{ const g = ({GEOMETRY})(row); return {condition}; }}", arg=row.element_handle(), timeout=30_000
        )
    except PlaywrightTimeout:
        pytest.fail(f"never {condition!r}: the row and its box stayed at {row.evaluate(GEOMETRY)}")


def assert_whole(page: Any, row: Any, message: str) -> None:
    """The row reads the whole message, wrapped onto several lines, nothing cut, wholly in view
    (once the rows drawn around it are measured and the box has settled)."""
    expect(row.locator(".message")).to_have_text(message)
    wait_for_geometry(page, row, "g.inside && !g.cut")
    geometry = row.evaluate(GEOMETRY)
    assert geometry["height"] >= 2 * ROW_PX, geometry
    assert geometry["inside"] and not geometry["cut"], geometry


@pytest.mark.parametrize("width", [1100, 360])
def test_a_long_line_wraps_and_is_read_whole(open_page, site, folder, width) -> None:
    point = point_to_apply(site, folder)
    op = run(execute(site, APPLY, id=point["id"], confirm=point["id"]))["applyRestorePoint"]["operation"]
    assert run(wait_for_operation(site, op["id"]))["status"] == "SUCCEEDED"
    lines = stored_lines(site, op["id"])
    changed = [n for n, line in enumerate(lines, 1) if line.startswith("Changed: site/")]
    assert len(changed) == 200 and all(len(lines[n - 1]) > 200 for n in changed)

    page = open_page(width=width)
    page.sign_in(site.token)
    done = page.region("Completed operations").get_by_role("listitem").filter(has_text=f"Apply: {point['label']}")
    done.get_by_role("button", name="Show log").click()
    log = done.get_by_role("list", name=re.compile("^Log of"))
    # Windowed: only the rows in view are in the DOM, each saying its place in the whole log.
    expect(log.locator(f'li[aria-setsize="{len(lines)}"]').first).to_be_attached()
    assert log.locator("li").count() < 100
    for position in (changed[0], changed[len(changed) // 2], changed[-1]):
        assert_whole(page, reveal(log, position), lines[position - 1])
    assert log.locator("li").count() < 100
    page.shot(f"long-lines-{width}", full_page=False)


def test_following_long_lines_keeps_the_newest_whole_in_view(open_page, site, folder) -> None:
    point = point_to_apply(site, folder)
    page = open_page()
    page.sign_in(site.token)
    page.row(point["label"]).get_by_role("button", name="Apply").click()
    dialog = page.page.get_by_role("dialog", name="Apply restore point")
    dialog.get_by_role("checkbox", name="Create a safety restore point first").uncheck()
    dialog.get_by_role("textbox", name="Type APPLY to confirm").fill("APPLY")
    dialog.get_by_role("button", name="Apply", exact=True).click()
    expect(dialog.get_by_role("status")).to_contain_text("The apply succeeded.", timeout=120_000)
    op = run(execute(site, "{ operations(first: 1, kind: [APPLY_RESTORE_POINT]) { nodes { id } } }"))
    lines = stored_lines(site, op["operations"]["nodes"][0]["id"])
    assert len(lines) > 200
    # Followed to the end: the newest line is in the DOM, wholly in view, the box at its end.
    log = dialog.get_by_role("list", name="Log of the apply")
    newest = log.locator(f'li[aria-posinset="{len(lines)}"]')
    expect(newest.locator(".message")).to_have_text(lines[-1])
    wait_for_geometry(page, newest, "g.inside && g.atEnd && !g.cut")
    assert log.locator("li").count() < 100
    # Scrolled up to a long line, it is whole there.
    changed = next(n for n, line in enumerate(lines, 1) if line.startswith("Changed: site/"))
    assert_whole(page, reveal(log, changed), lines[changed - 1])
    dialog.get_by_role("button", name="Close").click()
