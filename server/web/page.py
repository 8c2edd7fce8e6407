"""The reference page at /: web/dist (built from web/ by Vite) when it is there, else how to build it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response

Endpoint = Callable[[Request], Awaitable[Response]]
# The repository's web/dist: the server runs from its checkout (pip install -e).
WEB_DIST = Path(__file__).resolve().parents[2] / "web" / "dist"
NOT_BUILT = (
    "The page is not built: run `make web` (needs Node.js 20+ and npm), or `cd web && npm ci && npm run build`;"
    " GraphiQL is at /graphql.\n"
)
# GraphiQL is bundled from npm into web/dist with the page (no CDN: it works offline). Without
# the build there is no GraphiQL to offer that works everywhere, so this says how to get one.
GRAPHIQL_NOT_BUILT = (
    "GraphiQL is not built: run `make web` (needs Node.js 20+ and npm), or `cd web && npm ci && npm run build`;"
    " POST /graphql and the websocket work without it.\n"
)


def graphiql_page_for(dist: Path | None = None) -> Endpoint:
    """The handler for a browser's GET /graphql: web/dist/graphiql.html, read at each request."""
    dist = dist or WEB_DIST

    async def graphiql(request: Request) -> Response:
        page = dist / "graphiql.html"
        if not page.is_file():
            return PlainTextResponse(GRAPHIQL_NOT_BUILT, status_code=503)
        return FileResponse(page, media_type="text/html", headers={"Cache-Control": "no-cache"})

    return graphiql


def page_routes_for(dist: Path | None = None) -> tuple[Endpoint, Endpoint]:
    """The handlers for / and /assets/{path}, reading `dist` (web/dist) at each request: a build made
    after the server started shows without a restart."""
    dist = dist or WEB_DIST

    async def index(request: Request) -> Response:
        page = dist / "index.html"
        if not page.is_file():
            return PlainTextResponse(NOT_BUILT, status_code=503)
        # Never cached: it names the hashed assets of the current build.
        return FileResponse(page, headers={"Cache-Control": "no-cache"})

    async def asset(request: Request) -> Response:
        name = request.path_params["path"]
        folder = (dist / "assets").resolve()
        path = (folder / name).resolve()
        # Only files inside assets/: no `..`, no symlink out of it.
        if not path.is_relative_to(folder) or not path.is_file():
            return PlainTextResponse("Not found\n", status_code=404)
        # Vite puts a content hash in every asset's name: a name never changes content.
        return FileResponse(path, headers={"Cache-Control": "public, max-age=31536000, immutable"})

    return index, asset
