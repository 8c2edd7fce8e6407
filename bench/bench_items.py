"""One item back (issue 25), each against a peer in the same run, with the server's memory growth:

- one 1 MiB file out of the 1 GiB tree's restore point to the client's disk (signed link,
  then the download), p50 and p99 of 50, against `restic dump` of the same file from a
  restic repository of the same tree;
- a folder of 1,000 files downloaded as a ZIP (made while it is sent), against `zip -r -6`;
- a folder of 24,000 items listed page by page (first page p50, and the whole folder),
  against `restic ls` of that folder;
- one file of the 1 GiB tree put back in place, with the safety restore point (to SUCCEEDED
  by the server's clock), against `restic restore --include` of that file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from bench import api
from bench.context import BenchContext
from bench.measure import RssSampler, median, timed
from bench.measure import run as run_command
from bench.report import Row, mb
from bench.servers import ROOT, RUNS, ServerProcess, fresh_dir, our_server, remove_dirs
from bench.sources import tree_server_env
from bench.tools import restic_repo
from bench.workloads import large_tree

MiB = 1024 * 1024
ONE_FILE = "config/notes/one-mebibyte.bin"
ZIP_FOLDER = "zip-1000"
FLAT_FOLDER = "flat-24000"
FLAT_ITEMS = 24_000
PAGE = 100  # BACKUPS_MAX_PAGE_SIZE by default
MEMORY_LIMIT = 64 * MiB

LINK = """mutation($rp: ID!, $path: String!) { createItemDownloadUrl(restorePointId: $rp, source: "site",
    path: $path, expiresInSeconds: 600) { signedUrl { url } userErrors { code message } } }"""
ITEMS = """query($rp: ID!, $path: String, $first: Int, $after: String) { restorePoint(id: $rp) {
    items(source: "site", path: $path, first: $first, after: $after) {
      edges { node { path kind sizeBytes } } pageInfo { hasNextPage endCursor } } } }"""
APPLY_ITEM = """mutation($rp: ID!, $confirm: String!, $path: String!) { applyRestorePoint(restorePointId: $rp, confirm: $confirm,
    items: [{source: "site", paths: [$path]}]) { operation { id } userErrors { code message } } }"""


def has_items() -> bool:
    return "createItemDownloadUrl" in (ROOT / "schema.graphql").read_text()


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def _live_tree(scratch: Path) -> Path:
    """The 1 GiB tree, a 1 MiB file, a folder of 1,000 files and a flat folder of 24,000."""
    live = scratch / "live"
    run_command(["cp", "-a", str(large_tree().root), str(live)])
    (live / ONE_FILE).parent.mkdir(parents=True, exist_ok=True)
    (live / ONE_FILE).write_bytes(os.urandom(MiB))
    sources = sorted((live / "config").rglob("*.json"))[:1000]
    (live / ZIP_FOLDER).mkdir()
    for index, source in enumerate(sources):
        shutil.copy2(source, live / ZIP_FOLDER / f"{index:04d}-{source.name}")
    flat = live / FLAT_FOLDER
    flat.mkdir()
    for index in range(FLAT_ITEMS):
        (flat / f"item-{index:05d}.conf").write_text(f"item = {index}\n")
    return live


# One client kept open, as a frontend or a script keeps its connection: a new httpx client per
# request costs ~40-80 ms of its own (an SSL context is made even for http://), which measured
# the client, not the server.
CLIENT = httpx.Client(timeout=600)


def _graphql(server: ServerProcess, query: str, **variables: Any) -> dict[str, Any]:
    response = CLIENT.post(
        server.graphql_url, json={"query": query, "variables": variables}, headers=api.headers(server)
    )
    response.raise_for_status()
    body = response.json()
    if body.get("errors"):
        raise RuntimeError(body["errors"])
    return dict(body["data"])


def _download(server: ServerProcess, point_id: str, path: str, out: Path) -> int:
    data = _graphql(server, LINK, rp=point_id, path=path)
    url = data["createItemDownloadUrl"]["signedUrl"]["url"]
    with CLIENT.stream("GET", url) as response, out.open("wb") as file:
        response.raise_for_status()
        for chunk in response.iter_bytes(1024 * 1024):
            file.write(chunk)
    return out.stat().st_size


def _to_file(command: list[str], env: dict[str, str], out: Path) -> None:
    """A peer's binary output written to the client's disk, as ours is."""
    with out.open("wb") as file:
        subprocess.run(command, stdout=file, stderr=subprocess.PIPE, env=env, check=True)


def _first_page(server: ServerProcess, point_id: str, path: str) -> None:
    items = _graphql(server, ITEMS, rp=point_id, path=path, first=PAGE, after=None)["restorePoint"]["items"]
    if len(items["edges"]) != PAGE:
        raise RuntimeError(f"the first page held {len(items['edges'])} items, {PAGE} expected")


def _list_folder(server: ServerProcess, point_id: str, path: str) -> int:
    """The items seen paging through the whole folder."""
    after, seen = None, 0
    while True:
        items = _graphql(server, ITEMS, rp=point_id, path=path, first=PAGE, after=after)["restorePoint"]["items"]
        seen += len(items["edges"])
        if not items["pageInfo"]["hasNextPage"]:
            return seen
        after = items["pageInfo"]["endCursor"]


def run(ctx: BenchContext) -> list[Row]:
    if not has_items():
        return [
            Row(
                path="one item back",
                ours="-",
                peers="-",
                ratio="-",
                memory="-",
                target="-",
                met=None,
                note="no items API",
            )
        ]
    remove_dirs(sorted(p.name for p in RUNS.glob("items-*") if p.is_dir()))
    scratch = fresh_dir("items-tree")
    live = _live_tree(scratch)
    env_restic, cache = restic_repo(ctx.programs["restic"], scratch, live)
    restic = ctx.programs["restic"]
    runs = 10 if ctx.quick else 50
    results: dict[str, Any] = {}
    env = tree_server_env("items-server", live)
    assert env is not None
    with our_server("items-server", **env) as server:
        time.sleep(2.5)  # the hash cache vouches only for files older than 2 s (see bench_apply)
        point = api.create_restore_point(server)["restorePoint"]["id"]
        pid = server.process.pid  # type: ignore[union-attr]

        # one 1 MiB file to the client's disk
        out = scratch / "out.bin"
        with RssSampler(pid) as rss_file:
            ours_file = [timed(lambda: _download(server, point, ONE_FILE, out)) for _ in range(runs)]
        if out.read_bytes() != (live / ONE_FILE).read_bytes():
            raise RuntimeError("the downloaded file differs from the tree's")
        dump = [restic, "dump", *cache, "latest", f"/{ONE_FILE}"]
        peer_out = scratch / "restic-out.bin"
        peer_file = [timed(lambda: _to_file(dump, env_restic, peer_out)) for _ in range(runs)]
        if peer_out.read_bytes() != (live / ONE_FILE).read_bytes():
            raise RuntimeError("restic dump gave other bytes than the tree's")
        results["file"] = (ours_file, peer_file, rss_file.growth)

        # a folder of 1,000 files as a ZIP
        zip_out = scratch / "folder.zip"
        with RssSampler(pid) as rss_zip:
            ours_zip = [timed(lambda: _download(server, point, ZIP_FOLDER, zip_out)) for _ in range(ctx.runs)]
        zipped = zip_out.stat().st_size
        folder_bytes = sum(p.stat().st_size for p in (live / ZIP_FOLDER).iterdir())
        peer_zip = []
        for _ in range(ctx.runs):
            (scratch / "peer.zip").unlink(missing_ok=True)
            command = [ctx.programs["zip"], "-q", "-r", "-6", str(scratch / "peer.zip"), ZIP_FOLDER]
            peer_zip.append(timed(lambda: run_command(command, cwd=live)))  # noqa: B023 (called at once)
        results["zip"] = (ours_zip, peer_zip, rss_zip.growth, folder_bytes, zipped)

        # listing 24,000 items page by page
        with RssSampler(pid) as rss_list:
            listed = [_list_folder(server, point, FLAT_FOLDER) for _ in range(max(ctx.runs, 5))]
            # The first page's p50 over as many requests as the file rows (five listings were too
            # few for a median on a shared machine).
            firsts = [timed(lambda: _first_page(server, point, FLAT_FOLDER)) for _ in range(runs)]
        if any(seen != FLAT_ITEMS for seen in listed):
            raise RuntimeError(f"listing saw {listed} items, {FLAT_ITEMS} expected")
        whole = [timed(lambda: _list_folder(server, point, FLAT_FOLDER)) for _ in range(ctx.runs)]
        ls = [restic, "ls", *cache, "latest", f"/{FLAT_FOLDER}"]
        peer_ls = [timed(lambda: run_command(ls, env=env_restic)) for _ in range(ctx.runs)]
        results["list"] = (firsts, whole, peer_ls, rss_list.growth)

        # one file put back in place, with the safety restore point
        ours_apply, peer_apply = [], []
        with RssSampler(pid) as rss_apply:
            for index in range(ctx.runs):
                (live / ONE_FILE).write_bytes(b"changed since")
                data = _graphql(server, APPLY_ITEM, rp=point, confirm=point, path=ONE_FILE)
                ours_apply.append(api.seconds(api.wait_done(server, data["applyRestorePoint"]["operation"]["id"])))
                target = scratch / f"restored-{index}"
                restore = [restic, "restore", *cache, "latest", "--target", str(target), "--include", f"/{ONE_FILE}"]
                peer_apply.append(timed(lambda: run_command(restore, env=env_restic)))  # noqa: B023
        results["apply"] = (ours_apply, peer_apply, rss_apply.growth)
    remove_dirs([scratch.name])
    return _rows(results, runs)


def _rows(results: dict[str, Any], runs: int) -> list[Row]:
    ours_file, peer_file, file_growth = results["file"]
    file_ratio = median(ours_file) / median(peer_file)
    ours_zip, peer_zip, zip_growth, folder_bytes, zipped = results["zip"]
    ours_mbs, peer_mbs = folder_bytes / median(ours_zip) / 1e6, folder_bytes / median(peer_zip) / 1e6
    firsts, whole, peer_ls, list_growth = results["list"]
    ours_apply, peer_apply, apply_growth = results["apply"]

    def fits(growth: int) -> bool:
        return growth < MEMORY_LIMIT

    return [
        Row(
            path="one 1 MiB file out of the 1 GiB tree's restore point",
            ours=f"p50 {median(ours_file) * 1000:.1f} ms, p99 {_percentile(ours_file, 0.99) * 1000:.1f} ms",
            peers=f"`restic dump` p50 {median(peer_file) * 1000:.0f} ms, p99 {_percentile(peer_file, 0.99) * 1000:.0f} ms",
            ratio=f"{file_ratio:.2f}x restic (p50)",
            memory=f"server grew {mb(file_growth)}",
            target="p50 <= 0.1x restic dump; memory growth < 64 MB",
            met=file_ratio <= 0.1 and fits(file_growth),
            note=f"{runs} runs of each: a signed link asked for, then the file read by the client to disk over one "
            "kept connection. Ours: two GraphQL/HTTP round trips, the entry found by its folder in the "
            "children index, the blob checked whole before its first byte, then sent from its descriptor; "
            "restic opens its repository and index first each time.",
            numbers={"ours": ours_file, "restic": peer_file, "rss_growth": file_growth},
        ),
        Row(
            path="a folder of 1,000 files as a ZIP",
            ours=f"{ours_mbs:.0f} MB/s ({median(ours_zip):.2f} s, {mb(zipped)} sent)",
            peers=f"`zip -r -6` {peer_mbs:.0f} MB/s ({median(peer_zip):.2f} s)",
            ratio=f"{ours_mbs / peer_mbs:.2f}x zip throughput",
            memory=f"server grew {mb(zip_growth)}",
            target="memory growth < 64 MB",
            met=fits(zip_growth),
            note=f"{mb(folder_bytes)} of JSON; ours is made while it is sent and read by the client to disk. "
            "What limits it: per member, a checked read of its blob in a worker thread and stream-zip's "
            "deflate in Python, one thread hop per piece; zip reads files and deflates in C. No target "
            "in issue 25 for throughput (memory is the target).",
            numbers={"ours": ours_zip, "zip": peer_zip, "rss_growth": zip_growth},
        ),
        Row(
            path=f"listing a folder of {FLAT_ITEMS:,} items page by page",
            ours=f"first page p50 {median(firsts) * 1000:.1f} ms; all {FLAT_ITEMS // PAGE} pages {median(whole):.2f} s",
            peers=f"`restic ls` of the folder {median(peer_ls):.2f} s",
            ratio=f"{median(whole) / median(peer_ls):.2f}x restic ls (whole folder)",
            memory=f"server grew {mb(list_growth)}",
            target="first page p50 < 20 ms; memory growth < 64 MB",
            met=median(firsts) < 0.020 and fits(list_growth),
            note=f"pages of {PAGE} over HTTP on one kept connection, each one query, a keyset seek on the "
            "manifest's children index (manifest, source, folder, path; the folder and the restore point "
            "are looked up only when a page comes back empty); the first page's p50 over "
            f"{runs} requests. restic ls lists the folder in one call. What limits it now: of a page's "
            "~7 ms of server CPU (idle machine), the SQL is under 1 ms; the rest is Python per item "
            "(the row, the item, its cursor, GraphQL's completion of its edge, JSON).",
            numbers={"first_page": firsts, "whole": whole, "restic_ls": peer_ls, "rss_growth": list_growth},
        ),
        Row(
            path="putting back one file of the 1 GiB tree (with the safety restore point)",
            ours=f"{median(ours_apply):.2f} s to SUCCEEDED",
            peers=f"`restic restore --include` {median(peer_apply):.2f} s",
            ratio=f"{median(ours_apply) / median(peer_apply):.2f}x restic restore",
            memory=f"server grew {mb(apply_growth)}",
            target="< 0.2 s to SUCCEEDED; memory growth < 64 MB",
            met=median(ours_apply) < 0.2 and fits(apply_growth),
            note="the file changed before each apply; restic restores into an empty folder. Not met: an item "
            "apply runs a whole-source apply of a merged list, so its cost is that of the source (here "
            "~50,000 entries): by step (from the operation's log) the safety capture 1.7 s, its manifest "
            "stored 1.85 s, the merge 0.8 s, the check 0.3 s, staging 2.3 s (links), swap 0.5 s, restart "
            "walk 0.4 s, read-back 0.7 s. The next step's design is in docs/benchmarks.md.",
            numbers={"ours": ours_apply, "restic": peer_apply, "rss_growth": apply_growth},
        ),
    ]
