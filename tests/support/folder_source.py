"""The folder a test backs up: a tree with every kind of entry, its state as a restore must bring
it back, and a server whose sources include it."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import stat
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Generic, NamedTuple, TypeVar

from tests.support.config_file import write_config
from tests.support.in_process import InProcessServer
from tests.support.server_process import ServerCommon

S = TypeVar("S", bound=ServerCommon)


def make_tree(root: Path) -> None:
    (root / "conf.d" / "empty").mkdir(parents=True)
    (root / "media").mkdir()
    (root / "conf.d" / "main.yaml").write_text("listen: 80\nname: Hall A\n")
    (root / "conf.d" / "Ünïcödé ☃.json").write_text('{"snow": "man"}\n')
    (root / "media" / "logo.bin").write_bytes(bytes(range(256)) * 400)
    script = root / "start.sh"
    script.write_text("#!/bin/sh\nexec mediaserver\n")
    script.chmod(0o750)
    os.symlink("conf.d/main.yaml", root / "current.yaml")


def tree_state(root: Path) -> dict[str, Any]:
    """Everything about the tree a restore must bring back: kinds, content, modes, links."""
    state: dict[str, Any] = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode):
            state[rel] = ("link", os.readlink(path))
        elif stat.S_ISDIR(info.st_mode):
            state[rel] = ("dir", stat.S_IMODE(info.st_mode))
        else:
            state[rel] = ("file", stat.S_IMODE(info.st_mode), hashlib.sha256(path.read_bytes()).hexdigest())
    return state


class FolderServer(NamedTuple, Generic[S]):
    server: S
    site: Path  # the folder source's folder
    database: Path | None  # the SQLite database source's file, when asked for


def folder_server(
    make_server: Callable[..., S],
    tmp_path: Path,
    name: str = "data",
    *,
    files: Mapping[str, bytes | str] | None = None,
    settings: bool = True,
    database: bool = False,
    advance_clock: float = 0.0,
    **env: str,
) -> FolderServer[S]:
    """A started server (from `make_server`, with its data folder `name` and `env`) whose sources
    are the settings store (if `settings`), the folder `site` in `tmp_path` holding `files` (path
    -> content; make_tree's tree when None), and (if `database`) a SQLite database `appdb` with a
    table of three users. `advance_clock` moves an in-process server's clock on after it starts
    (2.2 s: past the hash cache's racy window, so a second capture of the unchanged folder reads
    nothing)."""
    tmp_path.mkdir(exist_ok=True)
    site = tmp_path / "site"
    extra, db = "", None
    if database:
        db = tmp_path / "app.db"
        with sqlite3.connect(db) as conn:
            conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
            conn.executemany("INSERT INTO users VALUES (?, ?)", [(1, "ada"), (2, "bob"), (3, "cy")])
        extra = f'\n[[sources]]\nname = "appdb"\nkind = "database"\nurl = "sqlite:///{db}"\n'
    config = write_config(tmp_path, settings=settings, page=False, extra=extra)
    if files is None:
        make_tree(site)
    for path, content in (files or {}).items():
        (site / path).parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            (site / path).write_bytes(content)
        else:
            (site / path).write_text(content)
    server = make_server(name, BACKUPS_CONFIG=str(config), **env).start()
    if advance_clock:
        assert isinstance(server, InProcessServer), "only an in-process server's clock can be moved"
        server.clock.advance(advance_clock)
    return FolderServer(server, site, db)
