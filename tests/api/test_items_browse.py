"""Browsing a restore point through RestorePoint.items: a folder source's tree (spaces, umlauts,
a deep tree, a link), the settings store's modules, a database's tables with their rows, every
source's top level, a big folder page by page, and every bad input refused with a clear error."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.api import create_and_wait, execute, execute_errors, update_settings, wait_for_operation
from tests.support.config_file import write_config
from tests.support.folder_source import folder_server, tree_state
from tests.support.in_process import InProcessServer
from tests.support.local_copies import exported_copy

NODE = "source path kind sizeBytes sha256 mode modifiedAt rowCount"
ITEMS = f"""query($id: ID!, $source: String, $path: String, $first: Int, $after: String) {{
  restorePoint(id: $id) {{
    items(source: $source, path: $path, first: $first, after: $after) {{
      totalCount
      edges {{ cursor node {{ {NODE} }} }}
      pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }}
    }}
  }}
}}"""
DEEP = "deep/a/b/c/d/e/f/g/h/i/j"
FILES = {
    "Read Me.txt": "spaces in the name\n",
    "Ünïcödé ordner/größe täglich.txt": "umlauts\n",
    "conf.d/main.yaml": "listen: 80\n",
    f"{DEEP}/leaf.txt": "at the bottom\n",
}


async def page_of(server: Any, point_id: str, **args: Any) -> dict[str, Any]:
    return (await execute(server, ITEMS, id=point_id, **args))["restorePoint"]["items"]


async def listing(server: Any, point_id: str, **args: Any) -> dict[str, dict[str, Any]]:
    """Every item of one listing (a single page), by path."""
    page = await page_of(server, point_id, first=100, **args)
    assert not page["pageInfo"]["hasNextPage"]
    assert page["totalCount"] == len(page["edges"])
    return {edge["node"]["path"]: edge["node"] for edge in page["edges"]}


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize("fast_execution", ["1", "0"])
async def test_a_folder_source_is_browsed_folder_by_folder(
    make_server: Callable[..., InProcessServer], tmp_path: Path, fast_execution: str
) -> None:
    server, site, _ = folder_server(
        make_server, tmp_path, files=FILES, settings=False, BACKUPS_FAST_EXECUTION=fast_execution
    )
    os.symlink("conf.d/main.yaml", site / "current.yaml")
    point_id = (await create_and_wait(server, "tree"))["restorePoint"]["id"]

    top = await listing(server, point_id, source="site")
    assert set(top) == {"Read Me.txt", "Ünïcödé ordner", "conf.d", "current.yaml", "deep"}
    assert {path: item["kind"] for path, item in top.items()} == {
        "Read Me.txt": "FILE",
        "Ünïcödé ordner": "FOLDER",
        "conf.d": "FOLDER",
        "current.yaml": "SYMLINK",
        "deep": "FOLDER",
    }
    readme = top["Read Me.txt"]
    assert readme["source"] == "site"
    assert readme["sizeBytes"] == len(FILES["Read Me.txt"])
    assert readme["sha256"] == sha256(FILES["Read Me.txt"])
    assert readme["mode"] == (site / "Read Me.txt").stat().st_mode & 0o7777
    assert readme["modifiedAt"] is not None and readme["rowCount"] is None
    folder = top["conf.d"]
    assert folder["sizeBytes"] is None and folder["sha256"] is None and folder["rowCount"] is None

    umlauts = await listing(server, point_id, source="site", path="Ünïcödé ordner")
    assert list(umlauts) == ["Ünïcödé ordner/größe täglich.txt"]
    assert umlauts["Ünïcödé ordner/größe täglich.txt"]["sha256"] == sha256("umlauts\n")

    # Down the deep tree one folder at a time: each level holds exactly the next one.
    parts = DEEP.split("/")
    for depth in range(1, len(parts)):
        level = await listing(server, point_id, source="site", path="/".join(parts[:depth]))
        assert level == {"/".join(parts[: depth + 1]): level["/".join(parts[: depth + 1])]}
        assert level["/".join(parts[: depth + 1])]["kind"] == "FOLDER"
    bottom = await listing(server, point_id, source="site", path=DEEP)
    assert list(bottom) == [f"{DEEP}/leaf.txt"] and bottom[f"{DEEP}/leaf.txt"]["kind"] == "FILE"


async def test_modules_tables_and_every_sources_top_level(
    make_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    server, _, database = folder_server(make_server, tmp_path, files={"a.txt": "a\n"}, database=True)
    assert database is not None
    with sqlite3.connect(database) as db:
        db.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, what TEXT)")
        db.executemany("INSERT INTO events VALUES (?, ?)", [(n, f"event {n}") for n in range(2500)])
        db.execute("CREATE TABLE empty (id INTEGER PRIMARY KEY)")
    assert (await update_settings(server, "audio", {"masterVolume": 3.5}))["userErrors"] == []
    assert (await update_settings(server, "lighting", {"scenes": {"evening": [1, 2]}}))["userErrors"] == []
    point_id = (await create_and_wait(server, "everything"))["restorePoint"]["id"]

    modules = await listing(server, point_id, source="settings")
    assert {"audio.json", "lighting.json"} <= set(modules)
    assert {item["kind"] for item in modules.values()} == {"MODULE"}
    assert modules["audio.json"]["sizeBytes"] > 0 and modules["audio.json"]["rowCount"] is None

    tables = await listing(server, point_id, source="appdb")
    assert {path: (item["kind"], item["rowCount"]) for path, item in tables.items()} == {
        "users": ("TABLE", 3),
        "events": ("TABLE", 2500),  # more than one batch of the capture's reads
        "empty": ("TABLE", 0),
    }
    assert all(item["sizeBytes"] > 0 and len(item["sha256"]) == 64 for item in tables.values())

    everything = await page_of(server, point_id, first=100)
    nodes = [edge["node"] for edge in everything["edges"]]
    assert {(node["source"], node["path"], node["kind"]) for node in nodes} == (
        {("settings", path, "MODULE") for path in modules}
        | {("appdb", path, "TABLE") for path in tables}
        | {("site", "a.txt", "FILE")}
    )
    assert everything["totalCount"] == len(nodes)
    sources = await execute(server, "query($id: ID!) { restorePoint(id: $id) { sources } }", id=point_id)
    assert sources["restorePoint"]["sources"] == ["appdb", "settings", "site"]  # sorted, each once
    # The rows of a table come with it in the every-source listing too.
    assert {n["path"]: n["rowCount"] for n in nodes if n["source"] == "appdb"} == {
        "users": 3,
        "events": 2500,
        "empty": 0,
    }

    # A second restore point of the same tables knows their rows as well (kept by content).
    again = (await create_and_wait(server, "again"))["restorePoint"]["id"]
    assert {p: i["rowCount"] for p, i in (await listing(server, again, source="appdb")).items()} == {
        "users": 3,
        "events": 2500,
        "empty": 0,
    }


async def test_a_source_configured_no_more_still_lists(
    make_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    server, _, _ = folder_server(make_server, tmp_path, files={"a.txt": "a\n"}, settings=False, database=True)
    point_id = (await create_and_wait(server, "with appdb"))["restorePoint"]["id"]
    assert server.stop() == 0
    write_config(tmp_path, page=False)  # the database source is gone from the config file
    server.start()

    # Its own sources, not the configured ones: the page's breadcrumb starts from these.
    sources = await execute(server, "query($id: ID!) { restorePoint(id: $id) { sources } }", id=point_id)
    assert sources["restorePoint"]["sources"] == ["appdb", "site"]
    tables = await listing(server, point_id, source="appdb")
    # Its kind is unknown now: the table file is listed as the file the restore point keeps.
    assert {path: item["kind"] for path, item in tables.items()} == {"users.jsonl": "FILE"}
    everything = await page_of(server, point_id, first=100)
    assert {(e["node"]["source"], e["node"]["path"]) for e in everything["edges"]} == {
        ("appdb", "users.jsonl"),
        ("site", "a.txt"),
    }


async def test_a_table_captured_elsewhere_has_no_row_count(
    make_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    """A restore point whose tables this server never counted (captured by another server, or
    before it counted rows) lists them with rowCount null."""
    first, _, _ = folder_server(make_server, tmp_path / "a", "server-a", settings=False, database=True)
    point_id = (await create_and_wait(first, "counted there"))["restorePoint"]["id"]
    copy = await exported_copy(first, point_id, "fileName")
    assert (await listing(first, point_id, source="appdb"))["users"]["rowCount"] == 3

    second, _, _ = folder_server(make_server, tmp_path / "b", "server-b", settings=False, database=True)
    (second.data_dir / "local-copies").mkdir(exist_ok=True)
    shutil.copy(first.data_dir / "local-copies" / copy["fileName"], second.data_dir / "local-copies" / "carried.zip")
    copies = (await execute(second, "{ localCopies { id fileName } }"))["localCopies"]
    carried = next(c["id"] for c in copies if c["fileName"] == "carried.zip")
    started = await execute(
        second, "mutation($id: ID!) { importLocalCopy(localCopyId: $id) { operation { id } } }", id=carried
    )
    assert (await wait_for_operation(second, started["importLocalCopy"]["operation"]["id"]))["status"] == "SUCCEEDED"

    tables = await listing(second, point_id, source="appdb")
    assert {path: (item["kind"], item["rowCount"]) for path, item in tables.items()} == {"users": ("TABLE", None)}


async def test_a_big_folder_pages_through_every_item_once_in_order(
    make_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    names = [f"f{n:05d}.txt" for n in range(3000)]
    files: dict[str, str] = {f"many/{name}": name for name in names}
    files |= {"many/sub/inside.txt": "not directly inside", "beside.txt": "outside", "many0/x.txt": "x"}
    server, _, _ = folder_server(make_server, tmp_path, files=files, settings=False)
    point_id = (await create_and_wait(server, "big"))["restorePoint"]["id"]

    seen: list[str] = []
    after, pages = None, 0
    while True:
        page = await page_of(server, point_id, source="site", path="many", first=97, after=after)
        pages += 1
        assert page["pageInfo"]["hasPreviousPage"] is (after is not None)
        assert page["pageInfo"]["startCursor"] == page["edges"][0]["cursor"]
        assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]
        assert len(page["edges"]) == 97 or not page["pageInfo"]["hasNextPage"]
        seen += [edge["node"]["path"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert pages == 31  # 3001 items, 97 to a page
    assert seen == [f"many/{name}" for name in names] + ["many/sub"]  # each once, in order
    assert page["totalCount"] == 3001

    # A cursor from the middle continues right after its item.
    middle = await page_of(server, point_id, source="site", path="many", first=2)
    resumed = await page_of(server, point_id, source="site", path="many", first=3, after=middle["edges"][1]["cursor"])
    assert [edge["node"]["path"] for edge in resumed["edges"]] == [f"many/{n}" for n in names[2:5]]


BAD = [
    # (arguments, code, words the message says)
    ({"source": "nope"}, "NOT_FOUND", ["no source named 'nope'", "'appdb'", "'settings'", "'site'"]),
    ({"source": "site", "path": "no/such"}, "NOT_FOUND", ["nothing at 'no/such' in source 'site'"]),
    ({"source": "nope", "path": "conf.d"}, "NOT_FOUND", ["no source named 'nope'"]),
    ({"source": "site", "path": "Read Me.txt"}, "INVALID_INPUT", ["'Read Me.txt'", "is a file, not a folder"]),
    ({"source": "site", "path": "link"}, "INVALID_INPUT", ["is a symlink, not a folder"]),
    ({"source": "appdb", "path": "users"}, "INVALID_INPUT", ["'users'", "is a table, not a folder"]),
    ({"source": "appdb", "path": "nothing"}, "NOT_FOUND", ["nothing at 'nothing'"]),
    ({"source": "settings", "path": "audio.json"}, "INVALID_INPUT", ["is a module, not a folder"]),
    ({"source": "settings", "path": "audio.json#/masterVolume"}, "INVALID_INPUT", ["one setting of a module"]),
    ({"source": "settings", "path": "audio.json#volume"}, "INVALID_INPUT", ["not an RFC 6901 JSON pointer"]),
    ({"source": "site", "path": ".."}, "INVALID_INPUT", ["'..' part"]),
    ({"source": "site", "path": "conf.d/../../etc"}, "INVALID_INPUT", ["'..' part"]),
    ({"source": "site", "path": "/etc"}, "INVALID_INPUT", ["is absolute"]),
    ({"source": "site", "path": "conf.d\x00x"}, "INVALID_INPUT", ["NUL byte"]),
    ({"source": "site", "path": "conf.d//x"}, "INVALID_INPUT", ["an empty"]),
    ({"source": "site", "path": "conf.d/"}, "INVALID_INPUT", ["an empty"]),
    ({"path": "conf.d"}, "INVALID_INPUT", ["give `source` with it"]),
    ({"source": "site", "first": 0}, "INVALID_INPUT", ["first must be between 1 and 100"]),
    ({"source": "site", "first": -1}, "INVALID_INPUT", ["first must be between 1 and 100"]),
    ({"first": 101}, "INVALID_INPUT", ["first must be between 1 and 100"]),
    ({"source": "site", "after": "not a cursor"}, "INVALID_INPUT", ["the cursor is not one this server gave out"]),
    ({"after": "bm9wZQ"}, "INVALID_INPUT", ["the cursor is not one this server gave out"]),  # base64 of "nope"
]


async def test_every_bad_input_is_refused_clearly_and_changes_nothing(
    make_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    server, site, _ = folder_server(
        make_server, tmp_path, files={"Read Me.txt": "r\n", "conf.d/main.yaml": "m\n"}, database=True
    )
    os.symlink("conf.d", site / "link")
    assert (await update_settings(server, "audio", {"masterVolume": 1.0}))["userErrors"] == []
    point_id = (await create_and_wait(server, "target"))["restorePoint"]["id"]
    # Another API's cursor (a restore point's) is no cursor of a listing either.
    points = "query { restorePoints(first: 1) { nodes { id checksum itemCount } pageInfo { endCursor } } }"
    before = await execute(server, points)
    cases = [*BAD, ({"after": before["restorePoints"]["pageInfo"]["endCursor"]}, "INVALID_INPUT", ["cursor"])]
    everything_before = await page_of(server, point_id, first=100)
    tree_before = tree_state(site)

    for arguments, code, words in cases:
        errors = await execute_errors(server, ITEMS, id=point_id, **arguments)
        assert len(errors) == 1, (arguments, errors)
        assert errors[0]["extensions"]["code"] == code, (arguments, errors)
        assert errors[0]["path"] == ["restorePoint", "items"]
        for word in words:
            assert word in errors[0]["message"], (arguments, errors[0]["message"])

    # Nothing changed: the restore points, what this one lists, the folder on disk.
    assert await execute(server, points) == before
    assert await page_of(server, point_id, first=100) == everything_before
    assert tree_state(site) == tree_before
    # An unknown restore point has no items to list: restorePoint is null.
    unknown = await execute(server, ITEMS, id="rp_00000000000000000000000000")
    assert unknown == {"restorePoint": None}
