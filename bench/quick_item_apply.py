"""A quick measurement of putting back one file of a big folder source (issue 25), without the
whole `items` bench (no 1 GiB tree, no restic): a generated tree of ~50,000 small files in 500
folders and one 1 MiB file; a restore point; then, `--runs` times, the file is changed and put
back with applyRestorePoint(items:) (a safety restore point, the in-process restart), timed by
the server's own clock (startedAt to finishedAt).

    .venv/bin/python -m bench.quick_item_apply [--files 50000] [--runs 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from datetime import datetime

from bench import api
from bench.servers import fresh_dir, our_server, remove_dirs
from bench.sources import tree_server_env

ONE_FILE = "notes/one-mebibyte.bin"
APPLY_ITEM = """mutation($rp: ID!, $confirm: String!, $path: String!) { applyRestorePoint(restorePointId: $rp, confirm: $confirm,
    items: [{source: "site", paths: [$path]}]) { operation { id } userErrors { code message } } }"""

LOG = "query($id: ID!) { operation(id: $id) { startedAt log { at message } } }"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--log", action="store_true", help="print the last run's log with times")
    args = parser.parse_args()
    scratch = fresh_dir("quick-item-apply")
    live = scratch / "live"
    per_folder = 100
    for index in range(args.files):
        folder = live / f"dir-{index // per_folder:04d}"
        if index % per_folder == 0:
            folder.mkdir(parents=True)
        (folder / f"file-{index:05d}.conf").write_text(f"value = {index}\n")
    (live / ONE_FILE).parent.mkdir(parents=True)
    (live / ONE_FILE).write_bytes(os.urandom(1024 * 1024))
    env = tree_server_env("quick-item-apply", live)
    assert env is not None
    with our_server("quick-item-apply-server", **env) as server:
        time.sleep(2.5)  # the hash cache vouches only for files older than 2 s
        point = api.create_restore_point(server)["restorePoint"]["id"]
        then = (live / ONE_FILE).read_bytes()
        seconds = []
        for _ in range(args.runs):
            (live / ONE_FILE).write_bytes(b"changed since")
            data = api.graphql(server, APPLY_ITEM, rp=point, confirm=point, path=ONE_FILE)
            op_id = data["applyRestorePoint"]["operation"]["id"]
            seconds.append(api.seconds(api.wait_done(server, op_id)))
            assert (live / ONE_FILE).read_bytes() == then
        if args.log:  # the last run's log, each line with its time since the operation started
            lines = api.graphql(server, LOG, id=op_id)["operation"]
            start = datetime.fromisoformat(lines["startedAt"])
            for line in lines["log"]:
                print(
                    f"{(datetime.fromisoformat(line['at']) - start).total_seconds() * 1000:7.0f} ms  {line['message']}"
                )
    remove_dirs([scratch.name])
    print(
        f"{args.files} files + 1 MiB file, one file put back, {args.runs} runs: "
        f"p50 {statistics.median(seconds) * 1000:.0f} ms, min {min(seconds) * 1000:.0f} ms, "
        f"max {max(seconds) * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
