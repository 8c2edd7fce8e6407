"""The whole life of a restore point across every source kind, through the API only:
create, export, download, delete, import, change everything, apply, and get it all back."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.support.api import create_and_wait, execute, update_settings, wait_for_operation
from tests.support.apply import modules, start_apply
from tests.support.folder_source import make_tree, tree_state
from tests.support.server_process import ServerProcess

ENTRIES = "query($id: ID!) { restorePoint(id: $id) { checksum entries { source path kind sizeBytes sha256 mode } } }"


def make_database(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE room (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
        db.execute(
            "CREATE TABLE display (id INTEGER PRIMARY KEY, room_id INTEGER REFERENCES room(id), "
            "brightness REAL, logo BLOB)"
        )
        db.execute("INSERT INTO room VALUES (1, 'Hall'), (2, 'Foyer')")
        db.execute("INSERT INTO display VALUES (1, 1, 80.5, x'00ff10'), (2, 2, NULL, NULL)")


def rows(path: Path) -> list[Any]:
    with sqlite3.connect(path) as db:
        return [
            db.execute("SELECT * FROM room ORDER BY id").fetchall(),
            db.execute("SELECT * FROM display ORDER BY id").fetchall(),
        ]


async def test_every_source_kind_survives_export_import_and_apply(
    make_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    site, database = tmp_path / "site", tmp_path / "app.db"
    make_tree(site)
    make_database(database)
    config = tmp_path / "backups.toml"
    config.write_text(
        '[[sources]]\nname = "settings"\nkind = "settings"\n\n'
        f'[[sources]]\nname = "site"\nkind = "directory"\npath = "{site}"\n\n'
        f'[[sources]]\nname = "appdb"\nkind = "database"\nurl = "sqlite:///{database}"\n'
    )
    server = make_server(BACKUPS_CONFIG=str(config)).start()
    tree_before, rows_before, settings_before = tree_state(site), rows(database), await modules(server)

    created = await create_and_wait(server, "everything")
    point_id = created["restorePoint"]["id"]
    original = (await execute(server, ENTRIES, id=point_id))["restorePoint"]
    assert {e["source"] for e in original["entries"]} == {"settings", "site", "appdb"}

    # Export, then download through a signed URL: the bytes are the file's.
    exported = await execute(
        server, "mutation($id: ID!) { exportRestorePoint(restorePointId: $id) { operation { id } } }", id=point_id
    )
    done = await wait_for_operation(server, exported["exportRestorePoint"]["operation"]["id"])
    copy = (
        await execute(server, "query($id: ID!) { operation(id: $id) { localCopy { id fileName } } }", id=done["id"])
    )["operation"]["localCopy"]
    link = await execute(
        server, "mutation($id: ID!) { createDownloadUrl(localCopyId: $id) { signedUrl { url } } }", id=copy["id"]
    )
    downloaded = httpx.get(link["createDownloadUrl"]["signedUrl"]["url"]).content
    assert downloaded == (server.data_dir / "local-copies" / copy["fileName"]).read_bytes()

    # Forget the restore point, then bring it back from the copy.
    await execute(server, "mutation($id: ID!) { deleteRestorePoint(id: $id) { deletedId } }", id=point_id)
    imported = await execute(
        server, "mutation($id: ID!) { importLocalCopy(localCopyId: $id) { operation { id } } }", id=copy["id"]
    )
    done = await wait_for_operation(server, imported["importLocalCopy"]["operation"]["id"])
    assert done["status"] == "SUCCEEDED" and done["restorePoint"]["id"] == point_id
    assert (await execute(server, ENTRIES, id=point_id))["restorePoint"] == original

    # Change every source, then apply the imported restore point.
    (site / "conf.d" / "main.yaml").write_text("listen: 8080\n")
    (site / "conf.d" / "added later.conf").write_text("gone after the apply\n")
    (site / "start.sh").chmod(0o777)
    with sqlite3.connect(database) as db:
        db.execute("DELETE FROM display WHERE id = 2")
        db.execute("INSERT INTO room VALUES (3, 'Backstage')")
    await update_settings(server, "audio", {"masterVolume": 6.0})
    assert tree_state(site) != tree_before and rows(database) != rows_before

    applied = await wait_for_operation(server, (await start_apply(server, point_id))["id"], timeout=120)
    assert applied["status"] == "SUCCEEDED", applied
    assert tree_state(site) == tree_before
    assert rows(database) == rows_before
    assert await modules(server) == settings_before
    system = await execute(server, "query($id: ID!) { system { state matchesRestorePoint(id: $id) } }", id=point_id)
    assert system["system"] == {"state": "RUNNING", "matchesRestorePoint": True}
