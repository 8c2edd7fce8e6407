"""Applying a restore point that holds a folder tree, through the API: damaged content is
found while the new tree is staged, before anything changes; files the folder already holds
as the restore point has them are kept, not rewritten; and the read-back that trusts the
digests written by the apply still sees a later change."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.api.test_every_source_round_trip import ENTRIES
from tests.support.api import create_and_wait, execute, update_settings, wait_for_operation
from tests.support.apply import (
    blob_path,
    modules,
    operation,
    restore_points,
    start_apply,
    system,
    wait_for_pause,
)
from tests.support.folder_source import folder_server, make_tree, tree_state
from tests.support.server_process import ServerProcess

MATCHES = "query($id: ID!) { system { matchesRestorePoint(id: $id) } }"
POINT_SIZES = """query($a: ID!, $b: ID!) { a: restorePoint(id: $a) { checksum storedBytes }
    b: restorePoint(id: $b) { checksum storedBytes } }"""


async def test_damaged_folder_content_refuses_before_anything_changes(
    make_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    # Loose blobs, as an earlier release stored them (a damaged pack range: test_packs.py).
    server, site, _ = folder_server(make_server, tmp_path, BACKUPS_PACK_SMALL_BLOBS="false")
    point_id = (await create_and_wait(server, "base"))["restorePoint"]["id"]
    entries = (await execute(server, ENTRIES, id=point_id))["restorePoint"]["entries"]
    victim = next(e for e in entries if e["path"] == "media/logo.bin")
    blob = blob_path(server, victim["sha256"])
    content = bytearray(blob.read_bytes())
    content[50_000] ^= 0xFF  # one byte, deep inside: only hashing all of it finds this
    blob.write_bytes(bytes(content))
    (site / "conf.d" / "main.yaml").write_text("listen: 8080\n")
    # Changed in the folder too, so the apply must write it from the damaged blob (a file
    # the folder still holds as it was is kept as it is, and its blob is not read).
    (site / "media" / "logo.bin").write_bytes(b"a newer logo")
    await update_settings(server, "audio", {"masterVolume": 6.0})
    tree, settings, points = tree_state(site), await modules(server), await restore_points(server)

    op = await start_apply(server, point_id, safety=True)
    final = await wait_for_operation(server, op["id"])

    assert final["status"] == "FAILED" and final["error"]["code"] == "CONTENT_DAMAGED", final
    message = final["error"]["message"]
    assert "'site'" in message and "media/logo.bin" in message and "nothing was changed" in message
    assert tree_state(site) == tree and await modules(server) == settings
    assert await restore_points(server) == points  # no safety restore point was left either
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".site")]  # no staged tree
    log = (await operation(server, op["id"]))["log"]
    assert any("does not match its SHA-256" in line["message"] and line["level"] == "ERROR" for line in log)
    assert (await system(server))["state"] == "RUNNING"


async def test_after_a_folder_apply_a_change_that_keeps_size_and_mtime_is_still_seen(
    make_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    server, site, _ = folder_server(make_server, tmp_path)
    point_id = (await create_and_wait(server, "base"))["restorePoint"]["id"]
    (site / "conf.d" / "main.yaml").write_text("listen: 8080\n")
    final = await wait_for_operation(server, (await start_apply(server, point_id))["id"])
    assert final["status"] == "SUCCEEDED", final
    log = (await operation(server, final["id"]))["log"]
    assert any("Read back: the configuration matches" in line["message"] for line in log)
    assert (await execute(server, MATCHES, id=point_id))["system"]["matchesRestorePoint"] is True

    logo = site / "media" / "logo.bin"
    info = logo.stat()
    logo.write_bytes(bytes(reversed(logo.read_bytes())))  # same size
    os.utime(logo, ns=(info.st_atime_ns, info.st_mtime_ns))  # and the mtime put back
    assert (await execute(server, MATCHES, id=point_id))["system"]["matchesRestorePoint"] is False


async def test_files_the_folder_already_holds_are_kept_and_the_next_capture_reads_nothing(
    make_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    server, site, _ = folder_server(make_server, tmp_path)
    server.clock.advance(2.2)  # past the hash cache's racy window: files hashed now are remembered
    point = (await create_and_wait(server, "base"))["restorePoint"]
    tree = tree_state(site)
    logo_inode = (site / "media" / "logo.bin").stat().st_ino
    (site / "conf.d" / "main.yaml").write_text("listen: 8080\n")
    (site / "start.sh").unlink()

    final = await wait_for_operation(server, (await start_apply(server, point["id"]))["id"])

    assert final["status"] == "SUCCEEDED", final
    assert tree_state(site) == tree
    assert (site / "media" / "logo.bin").stat().st_ino == logo_inode  # kept, not written again
    log = [line["message"] for line in (await operation(server, final["id"]))["log"]]
    assert any("2 files were already as the restore point has them and are kept" in line for line in log), log
    assert any("Read back: the configuration matches" in line for line in log)
    # The old tree's second names go in the background; then the hash cache still knows
    # the kept files, so capturing the unchanged folder again stores nothing new.
    deadline = time.monotonic() + 10
    while [n for n in os.listdir(tmp_path) if n.startswith(".site")] and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".site")]  # the old tree is gone
    capture = await create_and_wait(server, "again")
    sizes = await execute(server, POINT_SIZES, a=point["id"], b=capture["restorePoint"]["id"])
    assert sizes["a"]["checksum"] == sizes["b"]["checksum"] and sizes["b"]["storedBytes"] == 0
    log = [line["message"] for line in (await operation(server, capture["id"]))["log"]]
    # The folder's four files and the settings store's seven modules (reused on their digests).
    assert "11 unchanged items reused without being read again." in log, log


async def test_a_staged_tree_left_by_a_killed_server_is_removed_at_the_next_start(
    make_server_process: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    """Killed after staging, before anything changed: the resumed apply fails as it should,
    and the staged copy beside the folder is taken away then, not at some later apply."""
    server, site, _ = folder_server(make_server_process, tmp_path)
    point_id = (await create_and_wait(server, "base"))["restorePoint"]["id"]
    (site / "conf.d" / "main.yaml").write_text("listen: 8080\n")
    tree = tree_state(site)
    await asyncio.to_thread(server.stop)
    server.env_overrides["BACKUPS_TEST_PAUSE_AT"] = "safety"  # staging is done by then
    await asyncio.to_thread(server.start)

    op = await start_apply(server, point_id, safety=True)
    await wait_for_pause(server, op["id"])
    assert (tmp_path / ".site.backups-stage").is_dir()
    await asyncio.to_thread(server.kill)
    server.env_overrides.pop("BACKUPS_TEST_PAUSE_AT")
    await asyncio.to_thread(server.start)

    final = await wait_for_operation(server, op["id"])
    assert final["status"] == "FAILED" and "before the apply changed anything" in final["error"]["message"]
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".site")]
    assert tree_state(site) == tree


# Run as the restart command: changes a file of the applied folder after the commit, keeping
# its size and mtime, or adds one, so only a read-back that looks past the stat it recorded
# at the commit (the ctime moves) or lists the folder again can see it.
CHANGE_AFTER_COMMIT = """import os, sys
path, how = sys.argv[1], sys.argv[2]
if how == "add":
    open(path + ".new", "w").write("added by the restart")
else:
    info = os.stat(path)
    data = open(path, "rb").read()
    open(path, "wb").write(bytes(reversed(data)))
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
"""


@pytest.mark.parametrize(("file", "how"), [("written", "rewrite"), ("kept", "rewrite"), ("kept", "add")])
async def test_the_read_back_sees_a_change_made_after_the_commit(
    make_server: Callable[..., ServerProcess], tmp_path: Path, file: str, how: str
) -> None:
    """The read-back trusts each file's stat as the commit recorded it (the digest was
    checked as the file was written, or vouched for when it was kept), so a file the restart
    command changes, same size and mtime, is read again and the difference reported."""
    site = tmp_path / "site"
    make_tree(site)
    script = tmp_path / "change.py"
    script.write_text(CHANGE_AFTER_COMMIT)
    logo = site / "media" / "logo.bin"
    config = tmp_path / "backups.toml"
    config.write_text(f'[[sources]]\nname = "site"\nkind = "directory"\npath = "{site}"\n')
    command = f'"{sys.executable}" "{script}" "{logo}" {how}'
    server = make_server(BACKUPS_CONFIG=str(config), BACKUPS_RESTART_COMMAND=command).start()
    if file == "kept":
        server.clock.advance(2.2)  # past the hash cache's racy window: the logo is kept, not written
    point_id = (await create_and_wait(server, "base"))["restorePoint"]["id"]
    (site / "conf.d" / "main.yaml").write_text("listen: 8080\n")
    if file == "written":
        logo.write_bytes(b"another logo")  # so the apply writes it from the store
    logo_inode = logo.stat().st_ino

    final = await wait_for_operation(server, (await start_apply(server, point_id))["id"])

    assert final["status"] == "SUCCEEDED", final
    assert (logo.stat().st_ino == logo_inode) is (file == "kept")
    log = [line["message"] for line in (await operation(server, final["id"]))["log"]]
    assert not any("Read back: the configuration matches" in line for line in log), log
    assert any("Read back: the configuration differs" in line for line in log), log


@pytest.mark.slow
@pytest.mark.parametrize("step", ["applied:site", "restart", "finish"])
async def test_a_resumed_apply_removes_the_trash_the_killed_server_left(
    make_server_process: Callable[..., ServerProcess], tmp_path: Path, step: str
) -> None:
    """Killed between Applying and the end: start-up leaves the side folders while the apply
    is to be resumed, and the resumed apply removes the killed process's trash (the old tree)
    once it has ended, not at some later restart."""
    server, site, _ = folder_server(make_server_process, tmp_path)
    point_id = (await create_and_wait(server, "base"))["restorePoint"]["id"]
    applied = tree_state(site)
    (site / "conf.d" / "main.yaml").write_text("listen: 8080\npassword: hunter2\n")
    await asyncio.to_thread(server.stop)
    server.env_overrides["BACKUPS_TEST_PAUSE_AT"] = step
    await asyncio.to_thread(server.start)

    op = await start_apply(server, point_id, safety=True)
    await wait_for_pause(server, op["id"])
    await asyncio.to_thread(server.kill)
    # What a kill leaves when the old tree's removal had not finished (it runs in a thread,
    # so whether the real one is still there depends on timing): the old tree, renamed.
    trash = tmp_path / ".site.backups-trash-4194304-0"
    (trash / "conf.d").mkdir(parents=True, exist_ok=True)
    (trash / "conf.d" / "main.yaml").write_text("listen: 8080\npassword: hunter2\n")
    server.env_overrides.pop("BACKUPS_TEST_PAUSE_AT")
    await asyncio.to_thread(server.start)

    final = await wait_for_operation(server, op["id"])
    assert final["status"] == "SUCCEEDED", final
    assert tree_state(site) == applied
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".site")], os.listdir(tmp_path)
