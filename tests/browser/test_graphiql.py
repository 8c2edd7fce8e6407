"""GraphiQL at GET /graphql, built from npm into web/dist (no CDN), in a real Chromium with every
request that is not to the server's loopback address aborted: a machine without internet."""

from __future__ import annotations

import asyncio
import concurrent.futures
import shutil
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support.web_page import ensure_built

pytestmark = pytest.mark.slow

BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if (missing := ensure_built()) is not None:
        pytest.skip(missing)
    executable = shutil.which("chromium")
    if executable is None:
        pytest.skip("chromium is not installed (apt-get install chromium): the browser tests need it")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright package is not installed (pip install -e '.[test]')")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, headless=True, args=BROWSER_ARGS)
        yield chromium
        chromium.close()


class Offline:
    """A page in a fresh context where anything not on 127.0.0.1 is aborted (and remembered)."""

    def __init__(self, browser: Any) -> None:
        self.context = browser.new_context(viewport={"width": 1300, "height": 900})
        self.blocked: list[str] = []
        self.problems: list[str] = []
        self.context.route("**/*", self._only_loopback)
        self.page = self.context.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        self.page.on("pageerror", lambda error: self.problems.append(str(error)))

    def _only_loopback(self, route: Any) -> None:
        url = route.request.url
        if urlsplit(url).hostname == "127.0.0.1" or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()


@pytest.fixture
def offline(browser: Any) -> Iterator[Offline]:
    page = Offline(browser)
    yield page
    page.context.close()


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def test_graphiql_loads_offline_fetches_the_schema_with_the_token_and_runs_a_query(offline, site) -> None:
    page = offline.page
    page.goto(site.url + "/graphql")
    page.locator(".graphiql-container").wait_for()
    # Without a token the schema cannot be fetched (the server refuses introspection too).
    docs = page.get_by_role("button", name="Show Documentation Explorer")
    docs.click()
    expect(page.locator(".graphiql-doc-explorer")).not_to_contain_text("restorePoints")

    page.get_by_role("textbox", name="API token").fill(site.token)
    page.get_by_role("button", name="Use token").click()
    # The schema is fetched again with the token, without a reload: the docs list the fields.
    explorer = page.locator(".graphiql-doc-explorer")
    explorer.get_by_role("link", name="Query", exact=True).click()
    expect(explorer).to_contain_text("restorePoints")

    page.get_by_role("button", name="Execute query (Ctrl-Enter)").click()
    expect(page.locator(".graphiql-response")).to_contain_text('"totalCount"')
    assert page.evaluate("sessionStorage.getItem('backups.token')") == site.token
    assert offline.blocked == [], offline.blocked  # nothing was even asked of the internet
    assert offline.problems == [], offline.problems


def test_graphiql_takes_the_token_from_the_headers_tab_too(offline, site) -> None:
    page = offline.page
    page.goto(site.url + "/graphql")
    page.locator(".graphiql-container").wait_for()
    page.get_by_role("button", name="Headers").click()
    headers = page.locator('.monaco-editor[data-uri$="headers.json"]')
    headers.wait_for(state="visible")
    headers.click()
    page.keyboard.insert_text(f'{{"Authorization": "Bearer {site.token}"}}')
    expect(headers).to_contain_text("Bearer")
    page.get_by_role("button", name="Show Documentation Explorer").click()
    explorer = page.locator(".graphiql-doc-explorer")
    explorer.get_by_role("link", name="Query", exact=True).click()
    expect(explorer).to_contain_text("restorePoints")
    assert offline.problems == [], offline.problems


def test_post_and_get_with_a_query_stay_graphql(site) -> None:
    auth = {"Authorization": f"Bearer {site.token}"}
    page = httpx.get(site.url + "/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "/assets/" in page.text and "esm.sh" not in page.text
    got = httpx.get(site.url + "/graphql", params={"query": "{ __typename }"}, headers=auth)
    assert got.json() == {"data": {"__typename": "Query"}}
    posted = httpx.post(site.url + "/graphql", json={"query": "{ __typename }"}, headers=auth)
    assert posted.json() == {"data": {"__typename": "Query"}}


def test_without_the_build_graphiql_says_how_to_build_it(tmp_path) -> None:
    from starlette.applications import Starlette
    from starlette.routing import Route

    from server.web.page import graphiql_page_for

    app = Starlette(routes=[Route("/graphql", graphiql_page_for(tmp_path / "dist"))])

    async def get() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            return await client.get("/graphql")

    # On a thread of its own: Playwright's sync API keeps an event loop running on this one.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        answer = pool.submit(asyncio.run, get()).result(timeout=60)
    assert answer.status_code == 503 and "make web" in answer.text
