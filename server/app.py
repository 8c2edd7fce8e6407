"""create_app(settings): the Starlette application. Wiring only."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from server.api.context import Actor, Context
from server.api.schema import build_schema
from server.backend import Backend
from server.config import Settings
from server.version import SERVER_VERSION
from server.web.body_limit import BodyLimitMiddleware


class BackupsGraphQL(GraphQL[Context, None]):
    async def get_context(self, request: Request | WebSocket, response: object) -> Context:
        # Runs once per websocket connection: keep only long-lived things in the context.
        backend: Backend = request.app.state.backend
        base_url = str(request.base_url)
        if base_url.startswith("ws"):
            base_url = "http" + base_url[2:]
        return Context(services=backend.services, actor=Actor(), base_url=base_url)


async def health(request: Request) -> Response:
    backend: Backend = request.app.state.backend
    return JSONResponse(
        {
            "status": "ok",
            "version": SERVER_VERSION,
            "operations": backend.runner.stats(),
            "tasks": len(asyncio.all_tasks()),
        }
    )


async def root(request: Request) -> Response:
    return RedirectResponse("/graphql")


async def download(request: Request) -> Response:
    backend: Backend = request.app.state.backend
    return await backend.download(request)


def create_app(settings: Settings) -> Starlette:
    """The ASGI app: GraphQL (HTTP and graphql-transport-ws) on /graphql, plus /health."""
    schema = build_schema(
        max_depth=settings.max_query_depth,
        max_tokens=settings.max_query_tokens,
        max_aliases=settings.max_query_aliases,
    )
    graphql = BackupsGraphQL(
        schema,
        # Only graphql-transport-ws: the legacy graphql-ws protocol had an auth bypass.
        subscription_protocols=[GRAPHQL_TRANSPORT_WS_PROTOCOL],
        graphql_ide="graphiql",
        multipart_uploads_enabled=True,
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.backend = await Backend.open(settings)
        try:
            yield
        finally:
            await app.state.backend.close()

    return Starlette(
        routes=[
            Route("/", root),
            Route("/health", health),
            Route("/graphql", graphql),
            WebSocketRoute("/graphql", graphql),
            Route("/download/{token}", download, methods=["GET", "HEAD"]),
        ],
        middleware=[
            Middleware(
                BodyLimitMiddleware,
                max_body_bytes=settings.max_body_bytes,
                max_upload_bytes=settings.max_upload_bytes,
            )
        ],
        lifespan=lifespan,
    )
