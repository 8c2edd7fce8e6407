"""The page at /: without a build, one line saying how to build it (the API works as ever); a build
made while the server runs is served at once, its assets with long caching, nothing outside them."""

from __future__ import annotations

import httpx

import server.web.page
from tests.support.api import execute


async def test_without_a_build_the_root_says_how_to_build_it(make_server, tmp_path, monkeypatch) -> None:
    dist = tmp_path / "dist"
    monkeypatch.setattr(server.web.page, "WEB_DIST", dist)
    proc = make_server().start()
    async with httpx.AsyncClient(base_url=proc.url) as client:
        answer = await client.get("/")
        assert answer.status_code == 503
        assert answer.text.count("\n") == 1 and "make web" in answer.text and "npm run build" in answer.text
        assert (await client.get("/assets/index.js")).status_code == 404
        assert (await execute(proc, "{ me { role } }"))["me"]["role"] == "ADMIN"  # the API is served

        # Built after the start: shown without a restart.
        (dist / "assets").mkdir(parents=True)
        (dist / "index.html").write_text('<!doctype html><script src="/assets/index-abc.js"></script>')
        (dist / "assets" / "index-abc.js").write_text("console.log('page')")
        (tmp_path / "secret.txt").write_text("not to be served")
        page = await client.get("/")
        assert page.status_code == 200 and "index-abc.js" in page.text
        assert page.headers["cache-control"] == "no-cache"
        asset = await client.get("/assets/index-abc.js")
        assert asset.status_code == 200 and asset.text == "console.log('page')"
        assert "immutable" in asset.headers["cache-control"]
        for outside in ("/assets/../../secret.txt", "/assets/..%2F..%2Fsecret.txt", "/assets/%2E%2E/index.html"):
            refused = await client.get(outside)
            assert refused.status_code == 404 and "not to be served" not in refused.text, outside
        (dist / "assets" / "link.js").symlink_to(tmp_path / "secret.txt")
        assert (await client.get("/assets/link.js")).status_code == 404
