"""Applying a folder keeps the live files that already are what the restore point holds
(hard-linked into the new tree, see server/sources/folder/stage/reuse.py), writes the rest from the
store, and leaves the hash cache right for the next capture."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from server.services.capture.store import CaptureTally
from server.sources.folder.hash_cache import HashCache
from server.sources.folder.source import FolderSource
from server.sources.folder.stage.swap import side_paths
from server.sources.folder.stage.trash import wait_for_removals
from server.storage.blobs.content_store import ContentStore
from tests.support.capture import capture
from tests.unit.test_folder_source import OLD, state


@pytest.fixture
def store(tmp_path: Path) -> ContentStore:
    return ContentStore(tmp_path / "blobs")


def make_site(root: Path, files: int = 12) -> None:
    (root / "conf").mkdir(parents=True)
    for index in range(files):
        (root / "conf" / f"{index:02d}.json").write_text(f'{{"n": {index}}}\n' * (50 + index))
    (root / "media.bin").write_bytes(os.urandom(300_000))
    for path in [*root.rglob("*")]:
        os.utime(path, ns=(OLD, OLD))


def inodes(root: Path) -> dict[str, int]:
    return {p.relative_to(root).as_posix(): p.lstat().st_ino for p in root.rglob("*") if p.is_file()}


async def captured_site(tmp_path: Path, store: ContentStore, **options: str) -> tuple[Path, FolderSource, CaptureTally]:
    """A new site folder, its folder source with a hash cache, and a restore point of it."""
    root = tmp_path / "site"
    make_site(root)
    # racy_ns=0: the files here are brand new, and would otherwise not be remembered yet.
    source = FolderSource("site", root, cache=HashCache(tmp_path / "cache.sqlite3", racy_ns=0), **options)
    return root, source, await capture(source, store)


async def test_unchanged_files_are_kept_and_only_the_rest_is_written(tmp_path: Path, store: ContentStore) -> None:
    root, source, point = await captured_site(tmp_path, store)
    before, kept_inodes = state(root), inodes(root)

    (root / "conf" / "03.json").write_text("changed")
    os.chmod(root / "conf" / "04.json", 0o600)  # same content, other mode: written again
    os.utime(root / "conf" / "05.json", ns=(OLD + 7_000, OLD + 7_000))  # other mtime: written again
    # Held open while removed: ext4 gives a freed inode to the next new file at once, so the
    # file written back could get 06.json's old inode and look kept (failed once under load).
    with open(root / "conf" / "06.json", "rb"):
        (root / "conf" / "06.json").unlink()
        (root / "added.json").write_text("{}")

        await source.apply(point.entries, store.open)
        wait_for_removals()

        assert state(root) == before
        after = inodes(root)
        rewritten = {path for path in after if after[path] != kept_inodes[path]}
        assert rewritten == {"conf/03.json", "conf/04.json", "conf/05.json", "conf/06.json"}
    assert all(os.lstat(root / path).st_nlink == 1 for path in after)  # the old tree's names are gone
    assert not any(name.startswith(".site") for name in os.listdir(tmp_path))


async def test_the_next_capture_reads_nothing_after_an_apply_kept_files(tmp_path: Path, store: ContentStore) -> None:
    """Linking and unlinking move a file's ctime; the cache is told, so it is not re-read."""
    root, source, point = await captured_site(tmp_path, store)
    (root / "conf" / "00.json").write_text("changed")

    await source.apply(point.entries, store.open)
    wait_for_removals()
    again = await capture(source, store)

    files = sum(1 for e in point.entries if e.sha256)
    assert again.entries == point.entries
    assert again.reused == files and again.stored_bytes == 0


async def test_a_kept_files_blob_is_not_read_so_damage_to_it_cannot_reach_the_tree(
    tmp_path: Path, store: ContentStore
) -> None:
    root, source, point = await captured_site(tmp_path, store)
    before = state(root)
    media = next(e for e in point.entries if e.path == "media.bin")
    blob = store.path_of(media.sha256 or "")
    blob.write_bytes(bytes(len(blob.read_bytes())))  # same size, wrong content
    (root / "conf" / "01.json").write_text("changed")

    await source.apply(point.entries, store.open)
    wait_for_removals()

    assert state(root) == before  # media.bin is the live file, untouched


async def test_files_the_cache_cannot_vouch_for_are_written_from_the_store(tmp_path: Path, store: ContentStore) -> None:
    root, source, point = await captured_site(tmp_path, store)
    before, old_inodes = state(root), inodes(root)
    # Changed and its mtime put back: its ctime moved, so the cache no longer vouches for it.
    content = (root / "conf" / "02.json").read_bytes()
    (root / "conf" / "02.json").write_bytes(content.replace(b"2", b"9"))
    os.utime(root / "conf" / "02.json", ns=(OLD, OLD))
    # A second link to a file outside: never kept, so the tree does not share it afterwards.
    os.link(root / "conf" / "07.json", tmp_path / "elsewhere.json")

    await source.apply(point.entries, store.open)
    wait_for_removals()

    assert state(root) == before
    after = inodes(root)
    assert after["conf/02.json"] != old_inodes["conf/02.json"]
    assert after["conf/07.json"] != old_inodes["conf/07.json"]
    assert after["conf/08.json"] == old_inodes["conf/08.json"]
    assert (tmp_path / "elsewhere.json").read_bytes() == (root / "conf" / "07.json").read_bytes()


async def test_full_verify_keeps_nothing(tmp_path: Path, store: ContentStore) -> None:
    root, source, point = await captured_site(tmp_path, store, verify="full")
    before, old_inodes = state(root), inodes(root)

    await source.apply(point.entries, store.open)
    wait_for_removals()

    assert state(root) == before
    after = inodes(root)
    assert not any(after[path] == old_inodes[path] for path in after)


async def test_a_discarded_stage_leaves_the_live_files_as_they_were(tmp_path: Path, store: ContentStore) -> None:
    root, source, point = await captured_site(tmp_path, store)
    before = state(root)

    staged = await asyncio.to_thread(source.stage, point.entries, store.open)
    stage, _ = side_paths(root)
    assert stage.is_dir() and os.lstat(root / "media.bin").st_nlink == 2  # kept: linked
    await staged.discard()

    assert state(root) == before and not stage.exists()
    assert all(os.lstat(root / path).st_nlink == 1 for path in inodes(root))
    assert (await capture(source, store)).stored_bytes == 0
