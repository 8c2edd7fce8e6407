"""Fixtures of the browser tests: the built page, Debian's Chromium, pages opened in fresh
contexts that must end without console errors, and each test module's own `site` server (a
module overrides `site_env` to start it with a config or test settings of its own)."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import BROWSER_ARGS, Page
from tests.support.in_process import InProcessServer
from tests.support.web_page import ensure_built


@pytest.fixture(scope="session")
def built_page() -> None:
    if (missing := ensure_built()) is not None:
        pytest.skip(missing)


@pytest.fixture(scope="module")
def root(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The module's own folder: its `site` server's data folder (data/) and whatever its config names."""
    return tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_"))


@pytest.fixture(scope="module")
def site_env() -> dict[str, str]:
    """The environment the module's `site` server starts with: the defaults. A module overrides
    this fixture for settings of its own (a config file it writes under `root`, a test delay)."""
    return {}


@pytest.fixture(scope="module")
def site(root: Path, site_env: dict[str, str]) -> Iterator[InProcessServer]:
    """The module's own server, shared by its tests."""
    proc = InProcessServer(data_dir=root / "data", env_overrides=site_env).start()
    yield proc
    proc.close()


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
