"""RequestLimits on a tiny app: which limit applies, and uploads need an Authorization header."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from server.web.limits import RequestLimits


async def echo_size(request: Request) -> PlainTextResponse:
    return PlainTextResponse(str(len(await request.body())))


async def chunks():  # no Content-Length: counted as it streams in
    for _ in range(2):
        yield b"x" * 60


def client() -> httpx.AsyncClient:
    app = Starlette(
        routes=[Route("/graphql", echo_size, methods=["POST"]), Route("/upload/x", echo_size, methods=["PUT"])],
        middleware=[Middleware(RequestLimits, max_body_bytes=100, max_upload_bytes=1000, upload_paths=["/upload/"])],
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def test_ordinary_bodies_get_the_small_limit() -> None:
    async with client() as http:
        assert (await http.post("/graphql", content=b"x" * 100)).text == "100"
        too_big = await http.post("/graphql", content=b"x" * 101)
        assert too_big.status_code == 413
        assert too_big.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
        streamed = await http.post("/graphql", content=chunks())
        assert streamed.status_code == 413


async def test_uploads_get_the_large_limit_and_need_a_bearer_header() -> None:
    auth = {"Authorization": "Bearer bk_x"}
    async with client() as http:
        assert (await http.put("/upload/x", content=b"x" * 1000, headers=auth)).text == "1000"
        assert (await http.put("/upload/x", content=b"x" * 1001, headers=auth)).status_code == 413
        assert (await http.put("/upload/x", content=b"x")).status_code == 401
        files = {"file": ("a.zip", b"x" * 500)}
        assert (await http.post("/graphql", files=files, headers=auth)).status_code == 200
        refused = await http.post("/graphql", files=files)
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
