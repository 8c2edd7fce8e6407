"""Applying a restore point of the ~1 GiB tree back onto its folder, against `cp -a` of the
tree. Runs only on a server that has applyRestorePoint (issue 4) and folder sources."""

from __future__ import annotations

import os
import time
from pathlib import Path

from bench import api
from bench.context import BenchContext
from bench.measure import median, timed
from bench.measure import run as run_command
from bench.report import Row
from bench.servers import (
    ROOT,
    RUNS,
    ServerProcess,
    drop_from_cache,
    fresh_dir,
    our_server,
    remove_dirs,
    settle_deletions,
)
from bench.sources import has_folder_sources, tree_server_env
from bench.workloads import large_tree

APPLY = """mutation($id: ID!, $confirm: String!) { applyRestorePoint(restorePointId: $id, confirm: $confirm,
    createSafetyRestorePoint: false) { operation { id } userErrors { message } } }"""
TARGET = "apply the 1 GiB tree"
# issue 19's table: onto the live folder (what changed), and into an empty folder (every file)
LIVE_TARGET = "<= 1.5x `cp -a`"
EMPTY_TARGET = "<= 2.5x `cp -a`"
RACY_SECONDS = 2.5  # server/sources/folder/hash_cache.py RACY_NS, and a little more


def has_apply() -> bool:
    return "applyRestorePoint" in (ROOT / "schema.graphql").read_text()


def run(ctx: BenchContext) -> list[Row]:
    if not (has_apply() and has_folder_sources()):
        return [
            Row(
                path=TARGET,
                ours="-",
                peers="-",
                ratio="-",
                memory="-",
                target=LIVE_TARGET,
                met=None,
                note="not run: this server has no applyRestorePoint yet (issue 4)",
            )
        ]
    tree = large_tree()
    ours: list[float] = []
    full: list[float] = []
    peer: list[float] = []
    # As in the capture bench, nothing is deleted between measurements (a file created soon
    # after many deletions costs several times more on this journal-less ext4: see
    # settle_deletions): earlier runs' folders go first, this run's at the end.
    remove_dirs(_scratch())
    settle_deletions()
    for index in range(ctx.runs):
        scratch = fresh_dir(f"apply-{index}")
        live = scratch / "live"
        run_command(["cp", "-a", str(tree.root), str(live)])
        copied = time.monotonic()
        env = tree_server_env(f"apply-{index}", live)
        assert env is not None
        with our_server(f"apply-server-{index}", **env) as server:
            # The hash cache vouches only for files not written in the 2 s before they were
            # hashed, and `cp -a` has just written every one: a live tree has been there longer.
            time.sleep(max(0.0, RACY_SECONDS - (time.monotonic() - copied)))
            point = api.create_restore_point(server)["restorePoint"]
            # Something for the apply to put back: an eighth of the files, moved out of the
            # folder (moved, not deleted, for the reason above).
            os.rename(live / "config" / "audio", scratch / "lost-audio")
            ours.append(_apply(server, point["id"]))
            full.append(_apply_into_empty_folder(server, point["id"], live, scratch))
            drop_from_cache(server.data_dir)
        drop_from_cache(scratch)
        command = [ctx.programs["cp"], "-a", str(tree.root), str(scratch / "copy")]
        peer.append(timed(lambda: run_command(command)))  # noqa: B023 (called at once)
        drop_from_cache(scratch / "copy")
    remove_dirs(_scratch())
    ratio = median(ours) / median(peer)
    full_ratio = median(full) / median(peer)
    empty_folder = Row(
        path=f"{TARGET} into an empty folder (every file written)",
        ours=f"{median(full):.2f} s",
        peers=f"`cp -a` {median(peer):.2f} s",
        ratio=f"{full_ratio:.2f}x cp -a",
        memory="-",
        target=EMPTY_TARGET,
        met=full_ratio <= 2.5,
        numbers={"ours": full, "cp": peer},
    )
    return [
        Row(
            path=TARGET,
            ours=f"{median(ours):.2f} s",
            peers=f"`cp -a` {median(peer):.2f} s",
            ratio=f"{ratio:.2f}x cp -a",
            memory="-",
            target=LIVE_TARGET,
            met=ratio <= 1.5,
            numbers={"ours": ours, "cp": peer},
            note=NOTE,
        ),
        empty_folder,
    ]


NOTE = (
    "a folder of the tree with one of its eight areas moved out (3,000 files) is put back; no "
    "safety restore point asked for; nothing is deleted between measurements (see the capture "
    "row). Files the folder still holds as the restore point has "
    "them (the hash cache vouches for their content; size, mode and mtime match) are "
    "hard-linked into the new tree instead of written again, so the staging writes only what "
    "changed: ~21,000 links and ~3,000 files. Each written file's blob is hashed as it is "
    "copied, which is its verification. Then the state before is kept for a rollback (through "
    "the hash cache, whose rows stay in memory between the apply's three reads of them), one "
    "flush to disk and the swap, the in-process restart and the read-back, which reads only "
    "files whose stat moved since the commit recorded it; the old tree is deleted in the "
    "background once the apply has finished. The restore point is taken 2.5 s after `cp -a` "
    "made the folder, since the hash cache does not vouch for files written within 2 s of being "
    "hashed. What limits it now (medians of 3 applies of ~3.35 s): staging 1.3 s (an lstat, a link "
    "and an lstat per kept file, ~8 system calls per written one, on two threads), the state "
    "before 0.7 s (a walk, an item per entry, a stat per reused blob, the journal), the "
    "checksum and every blob's presence 0.35 s, the flush and swap 0.3 s, the restart's walk "
    "0.2 s, the read-back and the change summary 0.26 s; system calls and Python per entry, "
    "four walks of 25,000 entries. The row below writes every file."
)


def _scratch() -> list[str]:
    """The folders this benchmark writes (trees, server data), of any run."""
    return sorted(p.name for p in RUNS.glob("apply-*") if p.is_dir())


def _apply(server: ServerProcess, point_id: str) -> float:
    data = api.graphql(server, APPLY, id=point_id, confirm=point_id)
    return api.seconds(api.wait_done(server, data["applyRestorePoint"]["operation"]["id"]))


def _apply_into_empty_folder(server: ServerProcess, point_id: str, live: Path, scratch: Path) -> float:
    """The same apply with nothing to keep: the folder is set aside (renamed, not deleted)
    and an empty one put in its place."""
    while any(p.name.startswith(f".{live.name}.backups-trash") for p in live.parent.iterdir()):
        time.sleep(0.1)  # the first apply's old tree is still being removed
    os.rename(live, scratch / "set-aside")
    live.mkdir()
    drop_from_cache(scratch / "set-aside")
    return _apply(server, point_id)
