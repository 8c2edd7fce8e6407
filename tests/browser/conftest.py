"""Fixtures of the browser tests: the built page, Debian's Chromium, and pages opened in fresh
contexts that must end without console errors. Each test module brings its own `site` server."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support.browser import BROWSER_ARGS, Page
from tests.support.in_process import InProcessServer
from tests.support.web_page import ensure_built


@pytest.fixture(scope="session")
def built_page() -> None:
    if (missing := ensure_built()) is not None:
        pytest.skip(missing)


# Per module, not per session: Playwright's sync API keeps an event loop running on the
# test's thread while it is open, and an async test (pytest-asyncio) run after it on the same
# process, serially or on the same xdist worker, could then not start its own loop.
@pytest.fixture(scope="module")
def browser(built_page: None) -> Iterator[Any]:
    executable = shutil.which("chromium")
    if executable is None:
        pytest.skip("chromium is not installed (apt-get install chromium): the page's browser tests need it")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright package is not installed (pip install -e '.[test]')")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, headless=True, args=BROWSER_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def open_page(browser: Any, site: InProcessServer) -> Iterator[Callable[..., Page]]:
    """Open pages in fresh contexts (their own sessionStorage); each ends without console errors."""
    contexts: list[Any] = []
    pages: list[Page] = []

    def make(width: int = 1100, height: int = 900, base: str | None = None) -> Page:
        context = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True)
        contexts.append(context)
        page = Page(context.new_page(), base or site.url)
        pages.append(page)
        return page

    yield make
    problems = [problem for page in pages for problem in page.problems]
    for context in contexts:
        context.close()
    assert problems == [], problems
