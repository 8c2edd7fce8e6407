"""Helpers of the browser tests (tests/browser): a page that records console errors, Playwright's
expect, running async API helpers from a sync test, and the axe-core scan."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Coroutine
from typing import Any, TypeVar

from tests.support.web_page import ROOT, WEB

BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = ROOT / "tests" / "screenshots"
AXE = WEB / "node_modules" / "axe-core" / "axe.min.js"
TIMEOUT_MS = 30_000
T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run an async API helper to its end on a loop of its own thread (Playwright's sync API
    owns this thread while a test runs)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result(timeout=120)


class Page:
    """A fresh browser context on the site, recording console errors and page errors."""

    def __init__(self, page: Any, base: str) -> None:
        self.page, self.base = page, base
        self.problems: list[str] = []
        page.on("console", lambda message: message.type == "error" and self.problems.append(message.text))
        page.on("pageerror", lambda error: self.problems.append(str(error)))
        page.set_default_timeout(TIMEOUT_MS)

    def sign_in(self, token: str) -> None:
        self.page.goto(self.base + "/")
        self.page.get_by_role("textbox", name="API token").fill(token)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.get_by_text("Signed in as").wait_for()

    def region(self, name: str) -> Any:
        return self.page.get_by_role("region", name=name)

    def row(self, label: str) -> Any:
        return self.page.get_by_role("table", name="Restore points").get_by_role("row").filter(has_text=label)

    def shot(self, name: str, full_page: bool = True) -> None:
        SCREENSHOTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


def expect(locator: Any) -> Any:
    """Playwright's expect, waiting up to TIMEOUT_MS (not its 5 s) for what an operation does:
    on a machine busy with the rest of the suite, an import or a refetch can take longer."""
    from playwright.sync_api import expect as playwright_expect

    playwright_expect.set_options(timeout=TIMEOUT_MS)
    return playwright_expect(locator)


def scan(page: Page) -> list[str]:
    """axe-core on the page as it is: the serious and critical violations, one line each."""
    page.page.add_script_tag(path=str(AXE))
    results = page.page.evaluate("async () => (await axe.run(document)).violations")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']]}"
        for v in results
        if v["impact"] in ("serious", "critical")
    ]
