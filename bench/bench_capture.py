"""Restore points of the ~1 GiB tree as a folder source: the first one against `restic
backup` (first run, fresh repository) and `tar -cf` with the archive then flushed to disk; one
of the unchanged tree against restic's second run, with the bytes each adds to its storage."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from bench import api
from bench.context import BenchContext
from bench.measure import RssSampler, median, timed
from bench.measure import run as run_command
from bench.report import Row, mb
from bench.servers import RUNS, drop_from_cache, fresh_dir, our_server, remove_dirs, settle_deletions
from bench.sources import has_folder_sources, tree_server_env
from bench.workloads import Tree, large_tree

MB = 1024 * 1024
FIRST_TARGET = "<= 0.6x restic; <= 2x tar+sync"  # issue 19's table
UNCHANGED_TARGET = "faster than restic; <= max(1.5 s, 1/4 of the first); stored bytes grow < 1 MB"


def folder_size(path: Path) -> int:
    total = 0
    for folder, _dirs, names in os.walk(path):
        for name in names:
            with contextlib.suppress(FileNotFoundError):
                total += os.lstat(os.path.join(folder, name)).st_size
    return total


@dataclass
class CaptureRuns:
    first: list[float] = field(default_factory=list)
    second: list[float] = field(default_factory=list)
    second_stored: list[int] = field(default_factory=list)  # content-store growth, on disk
    second_database: list[int] = field(default_factory=list)  # database growth (the manifest)
    restic_first: list[float] = field(default_factory=list)
    restic_second: list[float] = field(default_factory=list)
    restic_second_growth: list[int] = field(default_factory=list)
    tar: list[float] = field(default_factory=list)
    peak_rss: int = 0


def _ours(ctx: BenchContext, tree: Tree, runs: CaptureRuns, index: int) -> None:
    env = tree_server_env("capture", tree.root)
    assert env is not None
    with our_server(f"capture-{index}", **env) as server:
        with RssSampler(server.process.pid) as rss:  # type: ignore[union-attr]
            first = api.create_restore_point(server, "first")
        runs.first.append(api.seconds(first))
        blobs, database = server.data_dir / "blobs", server.data_dir / "backups.db"
        before = folder_size(blobs), _db_size(database)
        with RssSampler(server.process.pid) as rss2:  # type: ignore[union-attr]
            second = api.create_restore_point(server, "unchanged")
        runs.second.append(api.seconds(second))
        runs.second_stored.append(folder_size(blobs) - before[0])
        runs.second_database.append(_db_size(database) - before[1])
        if second["restorePoint"]["itemCount"] != first["restorePoint"]["itemCount"]:
            raise RuntimeError("the unchanged tree gave a different restore point")
        runs.peak_rss = max(runs.peak_rss, rss.peak, rss2.peak)
    drop_from_cache(server.data_dir)


def _db_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def _restic(ctx: BenchContext, tree: Tree, runs: CaptureRuns, index: int) -> None:
    scratch = fresh_dir(f"restic-{index}")
    env = {**os.environ, "RESTIC_PASSWORD": "bench", "RESTIC_REPOSITORY": str(scratch / "repo")}
    restic = ctx.programs["restic"]
    cache = ["--cache-dir", str(scratch / "cache")]
    run_command([restic, "init", *cache], env=env)
    backup = [restic, "backup", "--quiet", *cache, "."]
    runs.restic_first.append(timed(lambda: run_command(backup, env=env, cwd=tree.root)))
    before = folder_size(scratch / "repo")
    runs.restic_second.append(timed(lambda: run_command(backup, env=env, cwd=tree.root)))
    runs.restic_second_growth.append(folder_size(scratch / "repo") - before)
    drop_from_cache(scratch)


def _tar(ctx: BenchContext, tree: Tree, runs: CaptureRuns, index: int) -> None:
    """`tar -cf`, then the archive and its folder flushed to disk (`sync FILE DIR`: an fsync
    of each), timed together: ours includes its flush, so the peer's time includes one too.
    Not a bare `sync`: that flushes every dirty page of the machine, other processes'
    writes included, which on a shared machine times them, not tar."""
    scratch = fresh_dir(f"tar-{index}")
    out = scratch / "tree.tar"

    def tar_and_sync() -> None:
        run_command([ctx.programs["tar"], "-cf", str(out), "-C", str(tree.root), "."])
        run_command(["sync", "--", str(out), str(scratch)])

    runs.tar.append(timed(tar_and_sync))
    drop_from_cache(scratch)


def _scratch() -> list[str]:
    """The folders this benchmark writes (stores, repositories, archives), of any run."""
    return sorted(p.name for pattern in ("capture-*", "restic-*", "tar-*") for p in RUNS.glob(pattern) if p.is_dir())


def run(ctx: BenchContext) -> list[Row]:
    if not has_folder_sources():
        return [
            Row(
                path=p,
                ours="-",
                peers="-",
                ratio="-",
                memory="-",
                target=t,
                met=None,
                note="this server has no folder source yet",
            )
            for p, t in [
                ("first restore point of the 1 GiB tree", FIRST_TARGET),
                ("restore point of the unchanged tree", UNCHANGED_TARGET),
            ]
        ]
    tree = large_tree()
    runs = CaptureRuns()
    # Nothing is deleted between measurements: removing a store or repository (~25,000 files)
    # right before the next capture made every file created soon after cost several times
    # more on this journal-less ext4 (see settle_deletions). Earlier runs' folders go first,
    # then the window is waited out once if need be; this run's go at the end.
    remove_dirs(_scratch())
    settle_deletions()
    for index in range(ctx.runs):
        _ours(ctx, tree, runs, index)
        _restic(ctx, tree, runs, index)
        _tar(ctx, tree, runs, index)
    remove_dirs(_scratch())
    first, restic1, tar = median(runs.first), median(runs.restic_first), median(runs.tar)
    second, restic2 = median(runs.second), median(runs.restic_second)
    stored = max(runs.second_stored)
    label = f"{tree.files:,} files, {tree.size / 1024**3:.2f} GiB"
    return [
        Row(
            path=f"first restore point of the 1 GiB tree ({label})",
            ours=f"{first:.2f} s",
            peers=f"restic (first run) {restic1:.2f} s; `tar -cf` then `sync` of the archive {tar:.2f} s",
            ratio=f"{first / restic1:.2f}x restic, {first / tar:.2f}x tar+sync",
            memory=f"server peak RSS {mb(runs.peak_rss)}",
            target=FIRST_TARGET,
            met=first <= 0.6 * restic1 and first <= 2 * tar,
            note=(
                "ours is timed by the server (operation start to finish, including the flush to "
                "disk); the peers by wall clock. tar's time is `tar -cf` and then `sync FILE DIR` "
                "(an fsync of the archive and of its folder) timed together, so both sides include "
                "their flush; a bare `sync` would also flush every other process's dirty pages on "
                "this shared machine. Nothing is deleted between measurements (each "
                "one's output is flushed and dropped from the page cache instead): earlier "
                "runs' stores and repositories are removed first, and if the bench's last big removal "
                "is less than 70 s old it flushes and waits that out, saying so (on a filesystem "
                "without a journal, ext4 avoids reusing an inode for 60 s after it was freed, 300 s "
                "while its inode-table block is unwritten, and checks each such inode again for "
                "every file it creates). "
                "Measured right after the bench had deleted the previous run's store, repository "
                "and archive, ours took 8.5 s against 5.9 s for the run before it (perf: a quarter "
                "of the server's samples in recently_deleted); on a private journal-less ext4, "
                "12.7 s right after 100,000 deletions against 5.8 s after a sync and 70 s. A real "
                "first capture does not follow such a deletion, and with a journal the check does "
                "not exist. Done: small blobs are appended to pack files (one write each instead of a "
                "create, a write and a rename; one flush for the pack), small files go to two reader "
                "threads 16 to a task with one read each of their known size, two threads hash and "
                "copy the big files, a big blob's pages are sent to disk while it is written. What "
                "limits it now (py-spy, ~3.3 s): the big files, each read and hashed twice (a first "
                "pass so that content the store holds costs no temporary copy, then the copy, which "
                "must hash the same: 1.5 GB of SHA-256 for 768 MiB); the walk before any storing "
                "(0.3 s) and the record after the flush (0.5 s: ~49,000 manifest and pack-index rows "
                "on SQLite, a third of it SQLAlchemy's per-row parameters). Next: one pass for a big "
                "file whose size the store holds no blob of (hash while writing, fstat before and "
                "after to catch a change, as restic and tar do), the walk overlapped with storing, "
                "the rows inserted through the driver's executemany."
            ),
            numbers=runs.__dict__,
        ),
        Row(
            path="restore point of the unchanged tree",
            ours=f"{second:.2f} s; content store grew {stored / MB:.2f} MB (database {median(runs.second_database) / MB:.1f} MB)",
            peers=f"restic (second run) {restic2:.2f} s, repository grew {median(runs.restic_second_growth) / MB:.2f} MB",
            ratio=f"{second / restic2:.2f}x restic",
            memory="(above)",
            target=UNCHANGED_TARGET,
            # The second condition was an assertion in tests/api/test_sources.py (an unchanged
            # 2 GiB file re-captured in under a quarter of the first capture's time): speed
            # is measured here, where the machine is quiet, not in the functional tests.
            met=second < restic2 and stored < MB and second <= max(1.5, first / 4),
            note=(
                "nothing new is stored: the hash cache answers for unchanged files, and the manifest "
                "is stored once and shared, so the same tree again adds one restore point row (the "
                "database growth shown is that row and the operation's log). No blob is looked up "
                "one by one: the stored manifest already keeps them, though each is still looked for "
                "(one stat, of its pack file or its own). What limits it now: walking and "
                "lstat-ing the 25,000 entries and making an item of each in Python (about two "
                "thirds, in the last profile), then one pass that pins the reused blobs and hashes "
                "the manifest (about a quarter). The 2026-12-02 run took 0.66 s against 0.36 s on "
                "2026-12-01 (still met); that rise is not profiled yet."
            ),
        ),
    ]
