"""Restore points of an unchanged folder share one stored manifest, through the real server:
no new manifest rows, every reader still sees each point's entries, and deleting frees a
manifest (and its blobs) only with its last restore point."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from tests.support.api import create_and_wait, execute, log_lines
from tests.support.blobs import stored_blobs
from tests.support.folder_source import folder_server
from tests.support.local_copies import export_members
from tests.support.server_process import ServerProcess

POINT = """query($id: ID!) { restorePoint(id: $id) { sizeBytes storedBytes itemCount checksum
    entries { source path kind sizeBytes sha256 mode } } }"""
DELETE = "mutation($id: ID!) { deleteRestorePoint(id: $id) { deletedId userErrors { code } } }"
SHARED_LINE = "The same manifest is stored already, and with it every blob it refers to."
FILES = {"app.yaml": b"volume: 3\n", "media/clip.bin": os.urandom(200_000), "media/intro.bin": os.urandom(50_000)}


def row_counts(server: ServerProcess) -> tuple[int, int]:
    """(manifests, manifest entries) in the server's database."""
    assert server.database is not None
    engine = create_engine(server.database.url)
    try:
        with engine.connect() as connection:
            manifests = connection.scalar(text("SELECT count(*) FROM manifest"))
            entries = connection.scalar(text("SELECT count(*) FROM manifest_entry"))
    finally:
        engine.dispose()
    return manifests or 0, entries or 0


async def point(server: ServerProcess, point_id: str) -> dict[str, Any] | None:
    return (await execute(server, POINT, id=point_id))["restorePoint"]


async def test_an_unchanged_folder_adds_no_manifest_rows(
    make_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    server, _, _ = folder_server(make_server, tmp_path, files=FILES, settings=False, advance_clock=2.2)
    first = await create_and_wait(server, "first")
    counts = row_counts(server)
    assert counts == (1, 4)  # the folder media/ and three files

    second = await create_and_wait(server, "unchanged")
    assert SHARED_LINE in await log_lines(server, second["id"])
    assert row_counts(server) == counts
    one, two = await point(server, first["restorePoint"]["id"]), await point(server, second["restorePoint"]["id"])
    assert one is not None and two is not None
    assert two["entries"] == one["entries"] and two["checksum"] == one["checksum"]
    assert two["itemCount"] == 4 and two["storedBytes"] == 0 and two["sizeBytes"] == one["sizeBytes"]

    (tmp_path / "site" / "app.yaml").write_bytes(b"volume: 4\n")
    changed = await create_and_wait(server, "changed")
    assert SHARED_LINE not in await log_lines(server, changed["id"])
    assert row_counts(server) == (2, 8)


async def test_a_shared_manifest_goes_with_its_last_restore_point(
    make_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    server, _, _ = folder_server(make_server, tmp_path, files=FILES, settings=False, advance_clock=2.2)
    first = (await create_and_wait(server, "first"))["restorePoint"]["id"]
    second = (await create_and_wait(server, "unchanged"))["restorePoint"]["id"]
    blobs = stored_blobs(server)
    assert len(blobs) == len(FILES)

    assert (await execute(server, DELETE, id=first))["deleteRestorePoint"]["userErrors"] == []
    assert stored_blobs(server) == blobs and row_counts(server) == (1, 4)
    assert await export_members(server, second) == {f"site/{name}": content for name, content in FILES.items()}

    assert (await execute(server, DELETE, id=second))["deleteRestorePoint"]["userErrors"] == []
    assert stored_blobs(server) == set() and row_counts(server) == (0, 0)


async def test_blobs_collected_with_their_manifest_are_read_again(
    make_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    """The hash cache still vouches for the files, but no manifest holds their blobs any
    more: the store is asked, and the files are read again."""
    server, _, _ = folder_server(make_server, tmp_path, files=FILES, settings=False, advance_clock=2.2)
    first = (await create_and_wait(server, "first"))["restorePoint"]["id"]
    await execute(server, DELETE, id=first)
    assert stored_blobs(server) == set()

    again = await create_and_wait(server, "again")
    assert SHARED_LINE not in await log_lines(server, again["id"])
    stored = await point(server, again["restorePoint"]["id"])
    assert stored is not None and stored["storedBytes"] == sum(len(c) for c in FILES.values())
    assert len(stored_blobs(server)) == len(FILES)
    members = await export_members(server, again["restorePoint"]["id"])
    assert members == {f"site/{name}": content for name, content in FILES.items()}


async def test_a_blob_missing_under_a_stored_manifest_is_stored_again(
    make_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    """The damage a second server's sweep did (or a hand): a stored manifest's blob is gone.
    Capturing the same content again must not trust the manifest: the blob is read again.
    Loose blobs, as an earlier release stored them: one removed by hand."""
    server, _, _ = folder_server(
        make_server, tmp_path, files=FILES, settings=False, advance_clock=2.2, BACKUPS_PACK_SMALL_BLOBS="false"
    )
    first = (await create_and_wait(server, "first"))["restorePoint"]["id"]
    clip = hashlib.sha256(FILES["media/clip.bin"]).hexdigest()
    (server.data_dir / "blobs" / clip[:2] / clip[2:]).unlink()

    again = await create_and_wait(server, "same content")
    lines = await log_lines(server, again["id"])
    assert SHARED_LINE not in lines
    assert "The same manifest is stored already, but 1 of its blobs were missing: stored again." in lines
    assert row_counts(server) == (1, 4)  # still the one manifest
    stored = await point(server, again["restorePoint"]["id"])
    assert stored is not None and stored["storedBytes"] == len(FILES["media/clip.bin"])
    assert len(stored_blobs(server)) == len(FILES)
    expected = {f"site/{name}": content for name, content in FILES.items()}
    assert await export_members(server, again["restorePoint"]["id"]) == expected
    assert await export_members(server, first) == expected  # the first, sharing the manifest, is whole again
