"""`python -m bench` (or `make bench`): every benchmark against its peers, then the table.

Options: --runs N (default 3), --only NAME[,NAME] (query, websockets, download, export,
capture, apply, preview, listing, roundtrip, upload,
encrypted_export, busy_queries, items, verification, notifications), --quick (shorter runs to try the harness).
"""

from __future__ import annotations

import argparse
import importlib
import time

from bench import tools
from bench.context import BenchContext
from bench.report import HERE, Row, write
from bench.workloads import WORK

BENCHMARKS = [
    "capture",
    "export",
    "apply",
    "preview",
    "download",
    "query",
    "listing",
    "roundtrip",
    "websockets",
    "upload",
    "encrypted_export",
    "busy_queries",
    "items",
    "verification",
    "notifications",
]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", default=",".join(BENCHMARKS))
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    started = time.monotonic()
    programs = tools.ensure_programs()
    ctx = BenchContext(runs=args.runs, programs=programs, quick=args.quick)
    rows: list[Row] = []
    names = args.only.split(",")
    for name in names:
        module = importlib.import_module(f"bench.bench_{name}")
        print(f"== {name}", flush=True)
        begun = time.monotonic()
        found = module.run(ctx)
        for row in found:
            print(f"   {row.path}: {row.ours} | {row.peers} | {row.ratio} | {row.memory} | met: {row.met}", flush=True)
        print(f"   ({time.monotonic() - begun:.0f} s)", flush=True)
        rows += found
    # Only a full run replaces bench/results.*; a partial one (--only, --quick) goes to bench/work/.
    complete = set(names) == set(BENCHMARKS) and not args.quick
    folder = HERE if complete else WORK / "partial-results"
    text = write(
        rows, runs=args.runs, seconds=time.monotonic() - started, peers=tools.versions(programs), folder=folder
    )
    print(text)
    print(f"written to {folder}/results.md")


if __name__ == "__main__":
    main()
