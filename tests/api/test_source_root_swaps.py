"""A folder source's root swapped for a link (or a file) after the server started: every
operation checks the root as it uses it, so an apply, a create and a describe refuse it
with SOURCE_UNAVAILABLE, and nothing outside the tree is read or written (issue 12, item 3).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.api import create_and_wait, create_restore_point, execute, wait_for_operation
from tests.support.apply import modules, restore_points, start_apply
from tests.support.folder_source import make_tree, tree_state
from tests.support.schedules import eventually
from tests.support.server_process import ServerProcess

SOURCES = "{ sources { name reachable problem } }"


def serve_folder(make_server: Callable[..., ServerProcess], tmp_path: Path, site: Path) -> ServerProcess:
    make_tree(site)
    config = tmp_path / "backups.toml"
    config.write_text(
        '[[sources]]\nname = "settings"\nkind = "settings"\n\n'
        f'[[sources]]\nname = "site"\nkind = "directory"\npath = "{site}"\n'
    )
    return make_server(BACKUPS_CONFIG=str(config)).start()


def folder_bytes(root: Path, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """Every file, link and folder under `root`, with the content's hash (`skip`: names at the top)."""
    state: dict[str, Any] = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if rel.split("/")[0] in skip:
            continue
        if path.is_symlink():
            state[rel] = ("link", os.readlink(path))
        elif path.is_dir():
            state[rel] = ("dir", path.lstat().st_ino)
        else:
            state[rel] = ("file", path.lstat().st_ino, hashlib.sha256(path.read_bytes()).hexdigest())
    return state


def other_folder(tmp_path: Path) -> Path:
    """A folder of someone else's files, laid out like the source so an apply would replace them."""
    other = tmp_path / "elsewhere"
    make_tree(other)
    (other / "conf.d" / "main.yaml").write_text("someone else's file\n")
    (other / "precious.txt").write_text("not part of any source\n")
    return other


async def failed(server: ServerProcess, op: dict[str, Any]) -> dict[str, Any]:
    """The apply's error, once it has ended: its final state stored, then its journal removed
    (in that order, so a crash between leaves a journal that start-up tidies away)."""
    final = await wait_for_operation(server, op["id"])
    assert final["status"] == "FAILED", final
    journal = server.data_dir / "apply-journal.json"
    await eventually(lambda: asyncio.to_thread(lambda: not journal.exists()))
    return final["error"]


async def test_apply_refuses_a_root_swapped_for_a_link_to_the_data_folder(
    make_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    site = tmp_path / "site"
    server = serve_folder(make_server, tmp_path, site)
    point_id = (await create_and_wait(server, "base"))["restorePoint"]["id"]
    points, settings = await restore_points(server), await modules(server)
    shutil.rmtree(site)
    os.symlink(server.data_dir, site)
    # The database files record the failed operation; everything else must stay as it is.
    before = folder_bytes(server.data_dir, skip=("backups.db", "backups.db-wal", "backups.db-shm"))
    data_inode = server.data_dir.stat().st_ino

    for safety in (False, True):  # the staging path, and the safety capture before it
        error = await failed(server, await start_apply(server, point_id, safety=safety))
        assert error["code"] == "SOURCE_UNAVAILABLE", error
        assert "'site'" in error["message"] and "link" in error["message"], error

    assert os.readlink(site) == str(server.data_dir)
    assert server.data_dir.stat().st_ino == data_inode
    assert folder_bytes(server.data_dir, skip=("backups.db", "backups.db-wal", "backups.db-shm")) == before
    assert await restore_points(server) == points and await modules(server) == settings  # the database works
    assert not [name for name in os.listdir(tmp_path) if name.startswith((".site", ".data"))]


async def test_apply_and_create_leave_another_folder_behind_a_swapped_root_alone(
    make_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    site = tmp_path / "site"
    server = serve_folder(make_server, tmp_path, site)
    point_id = (await create_and_wait(server, "base"))["restorePoint"]["id"]
    points = await restore_points(server)
    other = other_folder(tmp_path)
    shutil.rmtree(site)
    os.symlink(other, site)
    before = folder_bytes(other)

    error = await failed(server, await start_apply(server, point_id, safety=False))
    assert error["code"] == "SOURCE_UNAVAILABLE" and "'site'" in error["message"], error
    # A create must not read through the link either: no restore point of someone else's files.
    error = await failed(server, await create_restore_point(server, "through the link"))
    assert error["code"] == "SOURCE_UNAVAILABLE" and "'site'" in error["message"], error
    listed = {s["name"]: s for s in (await execute(server, SOURCES))["sources"]}
    assert listed["site"]["reachable"] is False and "link" in listed["site"]["problem"], listed

    assert folder_bytes(other) == before
    assert await restore_points(server) == points
    assert not [name for name in os.listdir(tmp_path) if name.startswith((".site", ".elsewhere"))]


async def test_a_parent_folder_swapped_for_a_link_is_refused_too(
    make_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    outer = tmp_path / "outer"
    site = outer / "site"
    server = serve_folder(make_server, tmp_path, site)
    point_id = (await create_and_wait(server, "base"))["restorePoint"]["id"]
    points = await restore_points(server)
    decoy = tmp_path / "decoy"
    other = other_folder(decoy)  # decoy/elsewhere: make it decoy/site, where the link leads
    os.rename(other, decoy / "site")
    shutil.rmtree(outer)
    os.symlink(decoy, outer)  # outer/site now leads to decoy/site
    before = folder_bytes(decoy)

    error = await failed(server, await start_apply(server, point_id, safety=False))
    assert error["code"] == "SOURCE_UNAVAILABLE" and "'site'" in error["message"], error
    error = await failed(server, await create_restore_point(server, "through the parent"))
    assert error["code"] == "SOURCE_UNAVAILABLE" and "'site'" in error["message"], error

    assert folder_bytes(decoy) == before
    assert await restore_points(server) == points


async def test_a_root_replaced_by_a_file_is_refused_and_left_alone(
    make_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    site = tmp_path / "site"
    server = serve_folder(make_server, tmp_path, site)
    point_id = (await create_and_wait(server, "base"))["restorePoint"]["id"]
    points = await restore_points(server)
    shutil.rmtree(site)
    site.write_text("a file where the folder was\n")

    error = await failed(server, await start_apply(server, point_id, safety=False))
    assert error["code"] == "SOURCE_UNAVAILABLE" and "'site'" in error["message"], error
    assert "not a folder" in error["message"], error
    error = await failed(server, await create_restore_point(server, "of a file"))
    assert error["code"] == "SOURCE_UNAVAILABLE" and "not a folder" in error["message"], error

    assert site.read_text() == "a file where the folder was\n"
    assert await restore_points(server) == points


async def test_an_apply_still_works_once_the_real_folder_is_back(
    make_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    """The checks refuse links, not the folder: put back, the same restore point applies."""
    site = tmp_path / "site"
    server = serve_folder(make_server, tmp_path, site)
    point_id = (await create_and_wait(server, "base"))["restorePoint"]["id"]
    expected = tree_state(site)
    shutil.rmtree(site)
    os.symlink(other_folder(tmp_path), site)
    assert (await failed(server, await start_apply(server, point_id, safety=False)))["code"] == "SOURCE_UNAVAILABLE"
    site.unlink()
    site.mkdir()

    final = await wait_for_operation(server, (await start_apply(server, point_id, safety=False))["id"])
    assert final["status"] == "SUCCEEDED", final
    assert tree_state(site) == expected
