"""The page under load, in a real Chromium: following a real operation with a 10,000-line log
(a capture of 10,000 files, each logging a line), then showing that stored log, the history
view of 100 restore points, and the first screen after sign-in with 100 restore points and the
operations that made them. The figures (long tasks from PerformanceObserver('longtask'), the
history's render time from the page's performance marks, the first screen's time from the
sign-in's submit to its facts and rows in the page) are printed and written to
tests/screenshots/perf.json, not asserted: on a busy 2-core machine they are noise-prone, and
speed figures do not belong in pass/fail tests. What is asserted is what makes it smooth: the
log keeps only the rows in view in the DOM."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.api import create_and_wait, execute
from tests.support.browser import SCREENSHOTS, expect, run
from tests.support.config_file import write_config
from tests.support.in_process import InProcessServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

LOG_FILES = 10_000
HISTORY_POINTS = 100
LONG_TASKS = """
window.__longTasks = [];
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) window.__longTasks.push(Math.round(entry.duration));
}).observe({ type: "longtask", buffered: true });
"""
FIRST_SCREEN = """
window.__firstScreen = new Promise((resolve) => {
  let start = null, screen = null;
  document.addEventListener("submit", () => { start ??= performance.now(); }, true);
  const status = () => document.querySelector('section[aria-labelledby="status-heading"]');
  const shown = () => {
    const facts = status()?.querySelectorAll(".fact-value") ?? [];
    return facts.length > 0 && [...facts].every((f) => f.textContent !== "…") && status().querySelector("time") !== null
      && document.querySelector('table[aria-labelledby="points-heading"] tbody tr th') !== null;
  };
  const all = () => document.querySelectorAll('section[aria-labelledby="completed-heading"] li.op').length >= 50;
  const observer = new MutationObserver(() => {
    if (start === null) return;
    if (screen === null && shown()) screen = performance.now() - start;
    if (screen !== null && all()) {
      observer.disconnect();
      const operations = performance.now() - start;
      requestAnimationFrame(() => setTimeout(() => resolve({ screen, operations, painted: performance.now() - start }), 0));
    }
  });
  new MutationObserver((_, self) => {
    if (!document.documentElement) return;
    self.disconnect();
    observer.observe(document.documentElement, { subtree: true, childList: true, characterData: true });
  }).observe(document, { childList: true });
});
"""
FIGURES: dict[str, Any] = {}


@pytest.fixture(scope="module")
def site_env(root: Path) -> dict[str, str]:
    """A directory source of 10,000 small files; the test delay after each item logs one line
    per item, so capturing it writes a 10,000-line log."""
    config = write_config(root, settings=True, page=False)
    for n in range(LOG_FILES):
        (root / "site" / f"file-{n:05}.conf").write_text(f"value = {n}\n")
    return {"BACKUPS_CONFIG": str(config), "BACKUPS_TEST_ENTRY_DELAY": "0.0001"}


@pytest.fixture(scope="module")
def history_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessServer]:
    """A server with 100 restore points."""
    proc = InProcessServer(data_dir=tmp_path_factory.mktemp("history") / "data").start()

    async def make() -> None:
        for n in range(HISTORY_POINTS):
            await create_and_wait(proc, f"point {n:03}")

    run(make())
    yield proc
    proc.close()


@pytest.fixture(scope="module", autouse=True)
def write_figures() -> Iterator[None]:
    yield
    if FIGURES:
        SCREENSHOTS.mkdir(exist_ok=True)
        path = SCREENSHOTS / "perf.json"
        before = json.loads(path.read_text()) if path.is_file() else {}
        path.write_text(json.dumps({**before, **FIGURES}, indent=2) + "\n")
        print(f"\nperf figures (also in {path}): {json.dumps(FIGURES)}")


def long_tasks(page: Any, reset: bool = False) -> list[int]:
    tasks = page.page.evaluate("window.__longTasks.slice()")
    if reset:
        page.page.evaluate("window.__longTasks.length = 0")
    return tasks


def test_following_a_10000_line_log_stays_windowed(open_page, site) -> None:
    page = open_page()
    page.page.add_init_script(LONG_TASKS)
    page.sign_in(site.token)
    expect(page.page.get_by_role("table", name="Restore points")).to_be_visible()
    long_tasks(page, reset=True)
    label = f"ten thousand {uuid.uuid4().hex[:6]}"
    page.page.get_by_role("button", name="Create restore point").click()
    page.page.get_by_role("textbox", name="Label").fill(label)
    page.page.get_by_role("button", name="Create", exact=True).click()

    running = page.region("Running operations").get_by_role("list", name=re.compile("^Log of"))
    # Windowed once long: each row says its place in the whole log.
    expect(running.locator("li[aria-setsize]").first).to_be_attached(timeout=120_000)
    assert running.locator("li").count() < 100
    done = page.region("Completed operations").get_by_role("listitem").filter(has_text=label)
    expect(done).to_contain_text("SUCCEEDED", timeout=180_000)
    following = long_tasks(page, reset=True)

    stored = run(execute(site, "{ operations(first: 1) { nodes { lastSequence } } }"))["operations"]["nodes"][0]
    total = stored["lastSequence"]
    assert total >= LOG_FILES
    # A fresh page has seen none of it: Show log streams all 10,000 stored lines at once.
    page = open_page()
    page.page.add_init_script(LONG_TASKS)
    page.sign_in(site.token)
    done = page.region("Completed operations").get_by_role("listitem").filter(has_text=label)
    expect(done).to_contain_text("SUCCEEDED")
    long_tasks(page, reset=True)
    done.get_by_role("button", name="Show log").click()
    log = done.get_by_role("list", name=re.compile("^Log of"))
    expect(log.locator(f'li[aria-setsize="{total}"]').first).to_be_attached(timeout=60_000)
    assert log.locator("li").count() < 100
    # Scrolled to the middle, the rows there are the ones in the DOM.
    log.evaluate("(list) => { const box = list.parentElement; box.scrollTop = box.scrollHeight / 2; }")
    middle = total // 2
    expect(log.locator(f'li[aria-posinset="{middle}"]')).to_be_attached()
    assert log.locator("li").count() < 100
    showing = long_tasks(page)
    page.shot("long-log", full_page=False)
    FIGURES["log_lines"] = total
    FIGURES["log_follow_long_tasks_ms"] = sorted(following, reverse=True)[:10]
    FIGURES["log_follow_longest_task_ms"] = max(following, default=0)
    FIGURES["log_show_long_tasks_ms"] = sorted(showing, reverse=True)[:10]
    FIGURES["log_show_longest_task_ms"] = max(showing, default=0)
    FIGURES["long_task_budget_ms"] = 200


def test_the_history_of_100_restore_points_renders(open_page, history_site) -> None:
    page = open_page(base=history_site.url)
    page.sign_in(history_site.token)
    table = page.page.get_by_role("table", name="Restore points")
    expect(table.get_by_role("row")).to_have_count(21)  # 20 a page at first
    page.page.evaluate("performance.clearMeasures()")
    page.page.get_by_role("combobox", name="Per page").select_option("100")
    expect(table.get_by_role("row")).to_have_count(HISTORY_POINTS + 1)
    page.page.wait_for_function("performance.getEntriesByName('restore-points-painted').length > 0")
    render = page.page.evaluate("performance.getEntriesByName('restore-points-render').at(-1).duration")
    painted = page.page.evaluate("performance.getEntriesByName('restore-points-painted').at(-1).duration")
    page.shot("history-100", full_page=False)
    FIGURES["history_rows"] = HISTORY_POINTS
    FIGURES["history_render_ms"] = round(render, 1)
    FIGURES["history_render_and_paint_ms"] = round(painted, 1)
    FIGURES["history_budget_ms"] = 100
    assert Path(SCREENSHOTS).is_dir()


def test_the_first_screen_after_sign_in_with_100_restore_points_and_their_operations(open_page, history_site) -> None:
    """Issue 28 item 7: from the sign-in's submit to the first screen at 1280x800 (the backup
    status with its facts, the first restore point's row), then to the 50 completed operations
    the page lists (the server holds the 100 that made the restore points), and to the next paint."""
    listed = run(execute(history_site, "{ operations(first: 100) { totalCount } }"))["operations"]["totalCount"]
    assert listed >= HISTORY_POINTS
    page = open_page(width=1280, height=800, base=history_site.url)
    page.page.add_init_script(FIRST_SCREEN)
    page.sign_in(history_site.token)
    figures = page.page.evaluate("window.__firstScreen")
    expect(page.region("Backup status")).to_contain_text(f"{HISTORY_POINTS} restore points")
    expect(page.page.get_by_role("table", name="Restore points").get_by_role("row")).to_have_count(21)
    expect(page.region("Completed operations").locator("li.op")).to_have_count(50)
    page.shot("first-screen-100", full_page=False)
    FIGURES["first_screen_operations"] = 50
    FIGURES["first_screen_ms"] = round(figures["screen"], 1)
    FIGURES["first_screen_with_50_operations_ms"] = round(figures["operations"], 1)
    FIGURES["first_screen_painted_ms"] = round(figures["painted"], 1)
    FIGURES["first_screen_budget_ms"] = 1000
