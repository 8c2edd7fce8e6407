"""Download of a 1 GiB local copy through a signed URL, against nginx with sendfile serving the
same file on loopback: throughput, and how much the server's memory grows meanwhile."""

from __future__ import annotations

import os
from pathlib import Path

from bench import api
from bench.context import BenchContext
from bench.measure import RssSampler, median
from bench.measure import run as run_command
from bench.report import Row, mb
from bench.servers import nginx, our_server

SIZE = 1024 * 1024 * 1024
CHUNK = 1024 * 1024


def _make_copy(folder: Path) -> Path:
    """A 1 GiB file in the local copies folder (a download serves any listed .zip as is)."""
    path = folder / "2026-01-01-000000_download-bench_000000000000.zip"
    block = os.urandom(CHUNK)
    with path.open("wb") as out:
        for _ in range(SIZE // CHUNK):
            out.write(block)
    return path


def _fetch(url: str, curl: str) -> float:
    """Seconds curl takes to read the whole body into /dev/null, checking its length."""
    result = run_command([curl, "-sS", "--fail", "-o", "/dev/null", "-w", "%{size_download} %{time_total}", url])
    size, seconds = result.stdout.split()
    if int(size) != SIZE:
        raise RuntimeError(f"{url}: {size} bytes, {SIZE} expected")
    return float(seconds)


def _signed_url(server, name: str) -> str:  # type: ignore[no-untyped-def]
    copies = api.graphql(server, "{ localCopies { id fileName problem } }")["localCopies"]
    copy = next(c for c in copies if c["fileName"] == name)
    data = api.graphql(
        server,
        "mutation($id: ID!) { createDownloadUrl(localCopyId: $id, expiresInSeconds: 3600) { signedUrl { url } userErrors { message } } }",
        id=copy["id"],
    )
    return data["createDownloadUrl"]["signedUrl"]["url"]


def run(ctx: BenchContext) -> list[Row]:
    ours: list[float] = []
    peer: list[float] = []
    growth: list[int] = []
    curl = ctx.programs["curl"]
    with our_server("download") as server:
        copies = server.data_dir / "local-copies"
        path = _make_copy(copies)
        url = _signed_url(server, path.name)
        with nginx(copies, ctx.programs["nginx"]) as (_, nginx_url):
            peer_url = f"{nginx_url}/{path.name}"
            _fetch(url, curl), _fetch(peer_url, curl)  # warm the page cache and both servers
            for _ in range(ctx.runs):
                with RssSampler(server.process.pid) as rss:  # type: ignore[union-attr]
                    ours.append(_fetch(url, curl))
                growth.append(rss.growth)
                peer.append(_fetch(peer_url, curl))
    ours_mbs = SIZE / median(ours) / 1e6
    peer_mbs = SIZE / median(peer) / 1e6
    share = ours_mbs / peer_mbs
    return [
        Row(
            path="download a 1 GiB local copy via signed URL",
            ours=f"{ours_mbs:.0f} MB/s ({median(ours):.2f} s)",
            peers=f"nginx sendfile {peer_mbs:.0f} MB/s ({median(peer):.2f} s)",
            ratio=f"{share:.2f}x nginx throughput",
            memory=f"server grew {mb(max(growth))}",
            target=">= 0.5x nginx; memory growth < 64 MB",
            met=share >= 0.5 and max(growth) < 64 * 1024 * 1024,
            note="both read by curl into /dev/null on the same loopback",
            numbers={"ours_seconds": ours, "nginx_seconds": peer, "rss_growth": growth},
        )
    ]
