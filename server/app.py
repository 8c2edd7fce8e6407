"""create_app(config): the Starlette application. Wiring only."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import orjson
from cross_web import HTTPException
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult
from strawberry.types.unset import UNSET, UnsetType

from server.api.context import Context
from server.api.fast_path.shared_frames import next_frame
from server.api.http.auth import bearer_token, connection_token, identify, note_refusal, unauthenticated
from server.api.http.multipart_form import MultipartRefused, limited_request_adapter
from server.api.http.multipart_map import BadMultipart, place_files
from server.api.http.websocket import TokenCheckingHandler
from server.api.schema import build_schema, quiet_stranded_resolvers
from server.backend import Backend
from server.clock import SYSTEM_CLOCK, Clock
from server.config.environment import ServerConfig
from server.gc_tuning import freeze_long_lived
from server.notices import check_auth_mode, first_token_notice
from server.test_seams import TestSeams
from server.web.backup_health import backup_health
from server.web.health import health
from server.web.limits import RequestLimits
from server.web.metrics import metrics
from server.web.origins import cors_middleware, websocket_origins
from server.web.page import graphiql_page_for, page_routes_for
from server.web.response_types import GRAPHQL_RESPONSE, response_type
from server.web.slow_clients import BodyTimeout

log = logging.getLogger("server.web")
GRAPHIQL_PAGE = graphiql_page_for()


class BackupsGraphQL(GraphQL[Context, None]):
    graphql_transport_ws_handler_class = TokenCheckingHandler

    def __init__(self, *args: Any, auth_recheck_seconds: float, max_form_part_bytes: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.auth_recheck_seconds = auth_recheck_seconds
        # Multipart forms within our limits, each refusal a JSON error with its code.
        self.request_adapter_class = limited_request_adapter(max_form_part_bytes)

    def encode_json(self, data: object) -> str:
        return self._encode(data)

    async def render_graphql_ide(self, request: Request) -> Response:
        # A browser's GET /graphql: GraphiQL built from local assets (Strawberry's loads a CDN).
        return await GRAPHIQL_PAGE(request)

    @staticmethod
    def _encode(data: object) -> str:
        # orjson is several times faster than json.dumps on a page of results. It refuses
        # integers beyond 64 bits (a JSON settings document may hold one): json takes those.
        # Always text, never bytes: Strawberry would send bytes as binary websocket frames.
        try:
            return orjson.dumps(data).decode()
        except TypeError:
            return json.dumps(data, separators=(",", ":"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await super().__call__(scope, receive, send)
        request = Request(scope=scope, receive=receive)
        # application/json (as always) or application/graphql-response+json, with the
        # spec's status codes, when the client asks for it (server/web/response_types.py).
        spec_response = response_type(request.headers.get("accept")) == GRAPHQL_RESPONSE
        request.state.spec_response = spec_response
        request.state.request_error = False
        # Strawberry answers a malformed request in plain text; ours is JSON like every error.
        try:
            response = await self.run(request)
        except HTTPException as error:
            code = error.code if isinstance(error, MultipartRefused) else "BAD_REQUEST"
            errors = [{"message": error.reason, "extensions": {"code": code}}]
            body = {"errors": errors} if spec_response else {"data": None, "errors": errors}
            response = JSONResponse(body, status_code=error.status_code)
        if spec_response and response.media_type == "application/json":
            response.headers["content-type"] = f"{GRAPHQL_RESPONSE}; charset=utf-8"
            if request.state.request_error and response.status_code == 200:
                response.status_code = 400
        await response(scope, receive, send)

    async def process_result(self, request: Any, result: ExecutionResult) -> Any:
        answer = await super().process_result(request, result)
        # A request error: nothing was executed (a document that does not parse or validate,
        # variables that do not coerce, no token). Its errors have no path, and no data.
        if result.data is None and result.errors and all(error.path is None for error in result.errors):
            request.state.request_error = True
            if request.state.spec_response:
                answer.pop("data", None)
        return answer

    async def parse_multipart(self, request: Any) -> dict[str, str]:
        # As Strawberry's, but every map path is checked (a path through null was a 500).
        try:
            form_data = await request.get_form_data()  # MultipartRefused goes up as it is
        except ValueError as error:
            raise HTTPException(400, "Unable to parse the multipart body") from error
        try:
            fields = [form_data.form.get(name, "{}") for name in ("operations", "map")]
            operations, files_map = [self.parse_json(v) if isinstance(v, str | bytes) else v for v in fields]
            return place_files(operations, files_map, form_data.files)
        except BadMultipart as error:
            await _close_files(form_data.files)
            raise HTTPException(400, str(error)) from error
        except BaseException:
            await _close_files(form_data.files)  # a refused request keeps no spooled upload open
            raise

    def decode_json(self, data: str | bytes) -> object:
        return orjson.loads(data)  # its JSONDecodeError is json's, which Strawberry catches

    async def get_context(self, request: Request | WebSocket, response: object) -> Context:
        # Runs once per websocket connection: keep only long-lived things in the context.
        backend: Backend = request.app.state.backend
        token = bearer_token(request.headers.get("authorization"))
        base_url = str(request.base_url)
        if base_url.startswith("ws"):
            base_url = "http" + base_url[2:]
        context = Context(
            services=backend.services,
            config=backend.config,
            offered_token=token,
            websocket=isinstance(request, WebSocket),
            base_url=base_url,
        )
        if isinstance(request, Request):
            context.actor = await identify(backend.services.access, token, auth_enabled=backend.config.auth_enabled)
            if context.actor.is_anonymous:
                await note_refusal(context, token)
        return context

    async def execute_operation(
        self,
        request: Request,
        request_adapter: Any,
        request_data: Any,
        context: Context,
        root_value: Any,
        sub_response: Response,
    ) -> Any:
        # A request without a valid token is refused before its query is even parsed.
        if context.actor.is_anonymous:
            sub_response.status_code = 401
            sub_response.headers["WWW-Authenticate"] = "Bearer"
            return ExecutionResult(data=None, errors=[unauthenticated(context)])
        return await super().execute_operation(
            request, request_adapter, request_data, context, root_value, sub_response
        )

    def is_websocket_origin_allowed(self, request: WebSocket, origin: str) -> bool:
        if allowed := super().is_websocket_origin_allowed(request, origin):
            return allowed
        log.warning("refused a websocket from a page on %s: list it in BACKUPS_ALLOWED_ORIGINS to allow it", origin)
        return False

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        # The token comes in the connection_init payload (a browser cannot set headers on a
        # websocket); a handshake Authorization header is accepted too. None valid: 4403.
        token = connection_token(context.connection_params) or context.offered_token
        actor = await identify(context.services.access, token, auth_enabled=context.config.auth_enabled)
        if actor.is_anonymous:
            context.offered_token = token
            await note_refusal(context, token)
            raise ConnectionRejectionError  # closed with 4403 and close_reason (websocket.py)
        context.actor, context.offered_token = actor, token
        context.recheck_token = actor.token_id is not None
        return UNSET


async def download(request: Request) -> Response:
    backend: Backend = request.app.state.backend
    return await backend.download(request)


async def item_download(request: Request) -> Response:
    backend: Backend = request.app.state.backend
    return await backend.item_download(request)


async def _close_files(form: Any) -> None:
    """Close a refused request's spooled uploads (Starlette's FormData closes its files)."""
    if callable(close := getattr(form, "close", None)):
        await close()


class FastBackupsGraphQL(BackupsGraphQL):
    """On the fast path: a subscription event shared by many subscribers is encoded once."""

    def encode_json(self, data: object) -> str:
        if (frame := next_frame(data, self._encode)) is not None:
            return frame
        return self._encode(data)


def create_app(
    config: ServerConfig,
    *,
    seams: TestSeams | None = None,
    clock: Clock = SYSTEM_CLOCK,
    on_first_token: Callable[[str, ServerConfig], None] = first_token_notice,
    own_process: bool = True,
) -> Starlette:
    """The ASGI app: GraphQL (HTTP and graphql-transport-ws) on /graphql, plus /health and the page at /.

    `seams`: the test seams (server/test_seams.py; None: all off). The other keywords are for
    a test server run inside the test's process: its clock, where the first admin token goes,
    and `own_process=False`, which leaves the garbage collector of a process the server does
    not own alone."""
    check_auth_mode(config)
    quiet_stranded_resolvers()
    schema = build_schema(
        max_depth=config.max_query_depth,
        max_tokens=config.max_query_tokens,
        max_aliases=config.max_query_aliases,
        fast=config.fast_execution,
    )
    graphql = (FastBackupsGraphQL if config.fast_execution else BackupsGraphQL)(
        schema,
        # Only graphql-transport-ws: the legacy graphql-ws protocol had an auth bypass.
        subscription_protocols=[GRAPHQL_TRANSPORT_WS_PROTOCOL],
        graphql_ide="graphiql",
        # A handshake from a page on another origin is refused (403) unless listed.
        allowed_origins=websocket_origins(config.allowed_origins, config.public_url),
        multipart_uploads_enabled=True,
        max_subscriptions_per_connection=config.max_subscriptions_per_connection,
        # A connection that has not sent its token by then is closed (4408).
        connection_init_wait_timeout=timedelta(seconds=10),
        auth_recheck_seconds=config.auth_recheck_seconds,
        max_form_part_bytes=config.max_request_bytes,
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.backend = await Backend.open(config, seams=seams, clock=clock, on_first_token=on_first_token)
        if own_process:
            freeze_long_lived()  # the services just opened live as long as the server
        try:
            yield
        finally:
            await app.state.backend.close()

    page, asset = page_routes_for()
    return Starlette(
        routes=[
            Route("/", page),
            Route("/assets/{path:path}", asset),
            Route("/health", health),
            Route("/health/backups", backup_health),
            Route("/metrics", metrics),
            Route("/graphql", graphql),
            WebSocketRoute("/graphql", graphql),
            Route("/download/{token}", download, methods=["GET", "HEAD"]),
            Route("/download/item/{token}", item_download, methods=["GET", "HEAD"]),
        ],
        middleware=[
            # Outermost, so that even a refusal (401, 413) tells a permitted page what it says.
            *cors_middleware(config.allowed_origins),
            Middleware(
                RequestLimits,
                max_body_bytes=config.max_request_bytes,
                # Room for the multipart framing around the file, so that a file just over
                # the cap gets the upload's own clear userError rather than a bare 413.
                max_upload_bytes=config.max_upload_bytes + 1024 * 1024,
            ),
            Middleware(BodyTimeout, seconds=config.body_timeout_seconds),
        ],
        lifespan=lifespan,
    )
