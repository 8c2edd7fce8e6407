"""Cross-origin access from a real Chromium page: BACKUPS_ALLOWED_ORIGINS for HTTP and websockets.

The page is served from a second loopback port (another origin); its JavaScript calls the API as
a UI would: fetch with the Authorization header (preflighted), a download, a multipart upload,
and a graphql-transport-ws websocket."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import http.server
import shutil
import threading
from collections.abc import Iterator

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.support.api import create_and_wait, execute
from tests.support.in_process import InProcessServer
from tests.support.local_copies import exported_copy
from tests.support.server_process import ServerProcess, free_port

# Its tests share a module-scoped server and browser: one xdist worker runs them all, so they
# are made once.
pytestmark = pytest.mark.xdist_group("browser-origins")

PAGE = b"""<!doctype html><html><head><title>ui</title></head><body><script>
async function callApi(api, token) {
  const response = await fetch(api + "/graphql", {
    method: "POST",
    headers: {"Authorization": "Bearer " + token, "Content-Type": "application/json"},
    body: JSON.stringify({query: "{ restorePoints(first: 1) { edges { node { id } } } }"}),
  });
  return {status: response.status, body: await response.json()};
}
async function download(url) {
  const response = await fetch(url);
  const blob = await response.blob();
  return {status: response.status, size: blob.size, disposition: response.headers.get("Content-Disposition")};
}
async function upload(api, token, url, name) {
  const blob = await (await fetch(url)).blob();
  const form = new FormData();
  form.append("operations", JSON.stringify({
    query: "mutation($f: Upload!) { uploadLocalCopy(file: $f) { localCopy { fileName } userErrors { code } } }",
    variables: {f: null}}));
  form.append("map", JSON.stringify({"0": ["variables.f"]}));
  form.append("0", blob, name);
  const response = await fetch(api + "/graphql", {method: "POST", headers: {"Authorization": "Bearer " + token}, body: form});
  return {status: response.status, body: await response.json()};
}
function openSocket(wsUrl, token) {
  return new Promise((resolve) => {
    const ws = new WebSocket(wsUrl, "graphql-transport-ws");
    ws.onopen = () => ws.send(JSON.stringify({type: "connection_init", payload: {authorization: "Bearer " + token}}));
    ws.onmessage = (event) => { resolve({message: JSON.parse(event.data).type}); ws.close(); };
    ws.onclose = (event) => resolve({closed: event.code});
  });
}
</script></body></html>"""

BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


class _PageHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def page_server() -> Iterator[str]:
    """The page on a loopback port of its own: its origin, http://127.0.0.1:PORT."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), _PageHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


class Browser:
    """Headless Chromium driven from a thread of its own: Playwright's sync API runs an event
    loop in its thread, which the async tests and fixtures here need for theirs."""

    def __init__(self, executable: str) -> None:
        from playwright.sync_api import sync_playwright

        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)

        def launch() -> None:
            self.playwright = sync_playwright().start()
            self.browser = self.playwright.chromium.launch(executable_path=executable, headless=True, args=BROWSER_ARGS)

        self.pool.submit(launch).result(timeout=60)

    def run(self, origin: str, script: str, *args: object) -> object:
        """Open `origin`'s page and evaluate `script` (a function of the argument list) in it."""

        def in_page() -> object:
            page = self.browser.new_page()
            try:
                page.goto(origin + "/")
                return page.evaluate(script, list(args))
            finally:
                page.close()

        return self.pool.submit(in_page).result(timeout=60)

    def close(self) -> None:
        def stop() -> None:
            self.browser.close()
            self.playwright.stop()

        self.pool.submit(stop).result(timeout=60)
        self.pool.shutdown()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    executable = shutil.which("chromium")
    if executable is None:
        pytest.skip("chromium is not installed (apt-get install chromium): the browser CORS test needs it")
    try:
        import playwright  # noqa: F401
    except ImportError:
        pytest.skip("the playwright package is not installed (pip install -e '.[test]')")
    browser = Browser(executable)
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str, str, dict]]:
    """A server allowing one page origin, a second page origin it does not list, and an exported copy."""
    with page_server() as allowed, page_server() as other:
        proc = InProcessServer(
            data_dir=tmp_path_factory.mktemp("origins") / "data", env_overrides={"BACKUPS_ALLOWED_ORIGINS": allowed}
        ).start()

        async def prepare() -> dict:
            point = (await create_and_wait(proc, "for the browser"))["restorePoint"]
            copy = await exported_copy(proc, point["id"])
            link = await execute(
                proc, "mutation($id: ID!) { createDownloadUrl(localCopyId: $id) { signedUrl { url } } }", id=copy["id"]
            )
            return {**copy, "url": link["createDownloadUrl"]["signedUrl"]["url"]}

        try:
            yield proc, allowed, other, asyncio.run(prepare())
        finally:
            proc.close()


def run_in_page(browser: Browser, origin: str, script: str, *args: object) -> object:
    return browser.run(origin, script, *args)


def test_a_listed_origin_calls_downloads_uploads_and_subscribes(chromium, setup) -> None:
    proc, allowed, _, copy = setup
    result = run_in_page(chromium, allowed, "([api, token]) => callApi(api, token)", proc.url, proc.token)
    assert result["status"] == 200 and len(result["body"]["data"]["restorePoints"]["edges"]) == 1, result

    fetched = run_in_page(chromium, allowed, "([url]) => download(url)", copy["url"])
    size = (proc.data_dir / "local-copies" / copy["fileName"]).stat().st_size
    assert fetched == {"status": 200, "size": size, "disposition": f'attachment; filename="{copy["fileName"]}"'}

    uploaded = run_in_page(
        chromium,
        allowed,
        "([api, token, url]) => upload(api, token, url, 'from-browser.zip')",
        proc.url,
        proc.token,
        copy["url"],
    )
    assert uploaded["status"] == 200, uploaded
    assert uploaded["body"]["data"]["uploadLocalCopy"]["userErrors"] == [], uploaded
    assert (
        proc.data_dir / "local-copies" / uploaded["body"]["data"]["uploadLocalCopy"]["localCopy"]["fileName"]
    ).exists()

    socket = run_in_page(chromium, allowed, "([ws, token]) => openSocket(ws, token)", proc.ws_url, proc.token)
    assert socket == {"message": "connection_ack"}


def test_an_unlisted_origin_is_refused_in_the_browser(chromium, setup) -> None:
    proc, _, other, copy = setup
    blocked = run_in_page(
        chromium,
        other,
        "([api, token]) => callApi(api, token).then(() => 'read', (error) => error.name)",
        proc.url,
        proc.token,
    )
    assert blocked == "TypeError"  # the browser refused to let the page read (or send) it
    socket = run_in_page(chromium, other, "([ws, token]) => openSocket(ws, token)", proc.ws_url, proc.token)
    assert socket == {"closed": 1006}  # the handshake failed: no connection at all
    before = {path.name for path in (proc.data_dir / "local-copies").iterdir()}
    refused = run_in_page(
        chromium,
        other,
        "([api, token, url]) => upload(api, token, url, 'smuggled.zip').then(() => 'read', (e) => e.name)",
        proc.url,
        proc.token,
        copy["url"],
    )
    assert refused == "TypeError"
    assert {path.name for path in (proc.data_dir / "local-copies").iterdir()} == before


def preflight(proc: ServerProcess, origin: str) -> httpx.Response:
    return httpx.options(
        proc.graphql_url,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )


async def handshake_status(proc: ServerProcess, origin: str | None) -> int:
    """101 when the websocket opened, else the HTTP status that refused it."""
    try:
        async with connect(proc.ws_url, subprotocols=["graphql-transport-ws"], origin=origin):  # type: ignore[list-item, arg-type]
            return 101
    except InvalidStatus as refused:
        return refused.response.status_code


async def test_preflight_and_handshake_answer_by_origin(setup) -> None:
    proc, allowed, other, _ = setup
    ok = preflight(proc, allowed)
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == allowed
    assert "authorization" in ok.headers["access-control-allow-headers"].lower()
    assert ok.headers["access-control-allow-credentials"] == "true"
    refused = preflight(proc, other)
    assert "access-control-allow-origin" not in refused.headers

    exposed = httpx.get(setup[3]["url"], headers={"Origin": allowed}).headers["access-control-expose-headers"]
    assert "Content-Disposition" in exposed and "ETag" in exposed

    assert await handshake_status(proc, allowed) == 101
    assert await handshake_status(proc, other) == 403
    assert await handshake_status(proc, None) == 101  # scripts send no Origin
    assert await handshake_status(proc, proc.url) == 101  # same origin (GraphiQL)


async def test_by_default_only_the_same_origin_is_allowed(server: ServerProcess) -> None:
    page = "http://127.0.0.1:5173"
    response = preflight(server, page)
    assert "access-control-allow-origin" not in response.headers
    assert await handshake_status(server, page) == 403
    assert await handshake_status(server, server.url) == 101
    assert await handshake_status(server, None) == 101


def test_a_malformed_origin_setting_stops_the_server_with_a_clear_line(make_server_process) -> None:
    proc = make_server_process(BACKUPS_ALLOWED_ORIGINS="http://localhost:5173/app")
    with pytest.raises(RuntimeError, match="is not an origin: write scheme://host"):
        proc.start()
