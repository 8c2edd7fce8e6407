"""The folder source against real folders and a real content store: capture, apply,
crash recovery and the hash cache. (Applying through the API belongs to the apply issue;
here the source's own apply is called with the blobs of a capture.)"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import sqlite3
import stat
from pathlib import Path

import pytest

from server.model.errors import OperationFailed
from server.model.records import EntryKind, ManifestEntry
from server.sources.base import StagingStopped
from server.sources.folder.hash_cache import HashCache
from server.sources.folder.source import FolderSource
from server.sources.folder.stage.swap import apply_tree, side_paths
from server.sources.folder.stage.trash import take_out, trash_name, wait_for_removals
from server.sources.folder.walk import PathFilter
from server.storage.blobs.content_store import ContentStore
from tests.support.capture import capture

OLD = 1_600_000_000_123_456_000  # a fixed past mtime, in ns (whole microseconds)


def make_tree(root: Path, outside: Path) -> None:
    """Nested and empty folders, binary files, unicode names, modes and links."""
    outside.mkdir(parents=True, exist_ok=True)
    (outside / "private.txt").write_text("outside the tree")
    (root / "a" / "b" / "c").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "a" / "b" / "c" / "deep.txt").write_text("deep")
    (root / "données").mkdir()
    (root / "données" / "café ☕.txt").write_text("crème brûlée\n")
    (root / "日本語.bin").write_bytes(bytes(range(256)) * 9000)  # ~2.3 MB: several chunks
    (root / "run.sh").write_text("#!/bin/sh\necho hi\n")
    os.chmod(root / "run.sh", 0o755)
    (root / "secret.key").write_bytes(os.urandom(64))
    os.chmod(root / "secret.key", 0o600)
    os.chmod(root / "a" / "b", 0o750)
    os.symlink("données/café ☕.txt", root / "link")
    os.symlink(outside, root / "outside-link")  # stored as a link, never followed
    for path in [*root.rglob("*")]:
        os.utime(path, ns=(OLD, OLD), follow_symlinks=False)
    os.utime(root / "a" / "b" / "c", ns=(OLD + 5_000, OLD + 5_000))


def state(root: Path) -> dict[str, tuple]:
    """Everything apply promises to restore: kind, mode, mtime, content or link target."""
    seen: dict[str, tuple] = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        rel = path.relative_to(root).as_posix()
        if stat.S_ISLNK(info.st_mode):
            seen[rel] = ("link", os.readlink(path), info.st_mtime_ns)
        elif stat.S_ISDIR(info.st_mode):
            seen[rel] = ("dir", stat.S_IMODE(info.st_mode), info.st_mtime_ns)
        else:
            seen[rel] = ("file", stat.S_IMODE(info.st_mode), info.st_mtime_ns, path.read_bytes())
    return seen


@pytest.fixture
def store(tmp_path: Path) -> ContentStore:
    return ContentStore(tmp_path / "blobs")


async def test_round_trip_restores_exact_tree_and_removes_added_files(tmp_path: Path, store: ContentStore) -> None:
    root = tmp_path / "site"
    make_tree(root, tmp_path / "outside")
    before = state(root)
    source = FolderSource("site", root)

    tally = await capture(source, store)

    kinds = {e.path: e.kind for e in tally.entries}
    assert kinds["empty"] is EntryKind.DIRECTORY and kinds["a/b/c"] is EntryKind.DIRECTORY
    assert kinds["link"] is kinds["outside-link"] is EntryKind.SYMLINK
    assert not any(path.startswith("outside-link/") for path in kinds)  # not followed
    assert tally.stored_bytes == sum(e.size for e in tally.entries if e.sha256)

    # Change everything a later state could: new files and folders, edits, modes, links.
    (root / "added.txt").write_text("added after the restore point")
    (root / "a" / "new-folder" / "x").mkdir(parents=True)
    (root / "run.sh").write_text("changed")
    os.chmod(root / "secret.key", 0o644)
    (root / "empty").rmdir()
    (root / "link").unlink()
    (root / "link").write_text("now a file")
    (root / "données" / "café ☕.txt").unlink()

    await source.apply(tally.entries, store.open)

    assert state(root) == before
    assert not (root / "added.txt").exists() and not (root / "a" / "new-folder").exists()
    wait_for_removals()  # the old tree is deleted in the background, after the apply
    assert sorted(os.listdir(tmp_path)) == ["blobs", "outside", "site"]  # no staging left
    assert (tmp_path / "outside" / "private.txt").read_text() == "outside the tree"


async def test_apply_keeps_what_the_source_does_not_manage(tmp_path: Path, store: ContentStore) -> None:
    root = tmp_path / "site"
    (root / "conf").mkdir(parents=True)
    (root / "conf" / "app.yaml").write_text("v: 1")
    source = FolderSource("site", root, exclude=["*.log", "cache"])
    tally = await capture(source, store)

    (root / "conf" / "app.yaml").write_text("v: 2")
    (root / "conf" / "new.yaml").write_text("new")
    (root / "conf" / "today.log").write_text("log line")
    (root / "cache" / "deep").mkdir(parents=True)
    (root / "cache" / "deep" / "item").write_text("cached")
    os.chmod(root / "cache" / "deep", 0o700)

    await source.apply(tally.entries, store.open)

    assert (root / "conf" / "app.yaml").read_text() == "v: 1"
    assert not (root / "conf" / "new.yaml").exists()
    assert (root / "conf" / "today.log").read_text() == "log line"
    assert (root / "cache" / "deep" / "item").read_text() == "cached"
    assert stat.S_IMODE((root / "cache" / "deep").stat().st_mode) == 0o700


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2-exchange", "two-renames"])
async def test_apply_swaps_with_either_method_and_clears_a_leftover_stage(
    tmp_path: Path, store: ContentStore, exchange: bool
) -> None:
    root = tmp_path / "site"
    make_tree(root, tmp_path / "outside")
    before = state(root)
    tally = await capture(FolderSource("site", root), store)
    (root / "added.txt").write_text("later")
    stage, old = side_paths(root)
    (stage / "half").mkdir(parents=True)  # a stage left by a run that died while building

    apply_tree(root, tally.entries, store.open, PathFilter(), exchange=exchange)

    assert state(root) == before
    assert not os.path.lexists(stage) and not os.path.lexists(old)


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2-exchange", "two-renames"])
async def test_apply_interrupted_between_the_two_renames_is_finished_by_running_it_again(
    tmp_path: Path, store: ContentStore, exchange: bool
) -> None:
    root = tmp_path / "site"
    make_tree(root, tmp_path / "outside")
    before = state(root)
    tally = await capture(FolderSource("site", root), store)
    (root / "added.txt").write_text("later")
    stage, old = side_paths(root)
    # What a crash between the two renames of the fallback swap leaves: the current tree
    # moved aside, a half-built stage, and no target at all.
    os.rename(root, old)
    (stage / "half").mkdir(parents=True)
    (stage / "half" / "file").write_text("partial")

    apply_tree(root, tally.entries, store.open, PathFilter(), exchange=exchange)

    assert state(root) == before
    assert not os.path.lexists(stage) and not os.path.lexists(old)


async def test_apply_into_a_missing_folder_creates_it(tmp_path: Path, store: ContentStore) -> None:
    root = tmp_path / "site"
    make_tree(root, tmp_path / "outside")
    before = state(root)
    tally = await capture(FolderSource("site", root), store)
    target = tmp_path / "fresh" / "site"
    await FolderSource("site", target).apply(tally.entries, store.open)
    assert state(target) == before


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([ManifestEntry("s", "../escape", EntryKind.FILE, 1, "a" * 64)], "unsafe path"),
        ([ManifestEntry("s", "/abs", EntryKind.FILE, 1, "a" * 64)], "unsafe path"),
        (
            [
                ManifestEntry("s", "ln", EntryKind.SYMLINK, 4, "a" * 64),
                ManifestEntry("s", "ln/passwd", EntryKind.FILE, 1, "b" * 64),
            ],
            "lies inside 'ln'",
        ),
        ([ManifestEntry("s", "f", EntryKind.FILE, 1, None)], "has no content"),
    ],
)
async def test_unsafe_entries_are_refused_before_anything_changes(
    tmp_path: Path, store: ContentStore, entries: list[ManifestEntry], message: str
) -> None:
    root = tmp_path / "site"
    root.mkdir()
    (root / "keep.txt").write_text("untouched")
    with pytest.raises(OperationFailed, match=message) as raised:
        await FolderSource("site", root).apply(entries, store.open)
    assert raised.value.code == "INVALID_ENTRY" and raised.value.message.startswith("source 'site': ")
    assert os.listdir(root) == ["keep.txt"] and sorted(os.listdir(tmp_path)) == ["blobs", "site"]


async def test_damaged_content_fails_the_apply_and_leaves_the_tree(tmp_path: Path, store: ContentStore) -> None:
    root = tmp_path / "site"
    root.mkdir()
    (root / "a.txt").write_text("original")
    tally = await capture(FolderSource("site", root), store)
    (root / "a.txt").write_text("current")
    store.path_of(tally.entries[0].sha256 or "").write_bytes(b"tampered")
    with pytest.raises(OperationFailed) as raised:
        await FolderSource("site", root).apply(tally.entries, store.open)
    assert raised.value.code == "CONTENT_DAMAGED"
    assert (root / "a.txt").read_text() == "current"
    assert sorted(os.listdir(tmp_path)) == ["blobs", "site"]


async def test_hash_cache_skips_unchanged_files_and_sees_changed_ones(tmp_path: Path, store: ContentStore) -> None:
    root = tmp_path / "site"
    make_tree(root, tmp_path / "outside")
    cache = HashCache(tmp_path / "cache.sqlite3", racy_ns=0)  # files here are brand new
    source = FolderSource("site", root, cache=cache)
    files = 5

    first = await capture(source, store)
    assert first.reused == 0
    second = await capture(source, store)
    assert second.reused == files and second.stored_bytes == 0
    assert second.entries == first.entries

    # Same size, mtime put back: ctime still moves, so the change is seen.
    data = (root / "secret.key").read_bytes()
    (root / "secret.key").write_bytes(bytes(b ^ 0xFF for b in data))
    os.utime(root / "secret.key", ns=(OLD, OLD))
    third = await capture(source, store)
    assert third.reused == files - 1 and third.stored_bytes == len(data)
    changed = {e.path: e.sha256 for e in third.entries} != {e.path: e.sha256 for e in first.entries}
    assert changed

    # A blob that was collected is stored again from the file, not trusted from the cache.
    entry = next(e for e in third.entries if e.path == "run.sh")
    store.path_of(entry.sha256 or "").unlink()
    fourth = await capture(source, store)
    assert fourth.reused == files - 1 and store.has(entry.sha256 or "")


async def test_a_wrong_hint_whose_blob_is_absent_is_replaced_by_what_the_file_holds(
    tmp_path: Path, store: ContentStore
) -> None:
    """A cache entry naming a blob the store lacks is no reason to trust it: the file is
    read, and its entry (and the manifest id) names the content it really has."""
    root = tmp_path / "site"
    make_tree(root, tmp_path / "outside")
    cache = HashCache(tmp_path / "cache.sqlite3", racy_ns=0)
    source = FolderSource("site", root, cache=cache)
    first = await capture(source, store)
    wrong = hashlib.sha256(b"what the cache wrongly remembers").hexdigest()
    cache.flush()
    with sqlite3.connect(tmp_path / "cache.sqlite3") as db:
        assert db.execute("UPDATE file_digest SET sha256 = ? WHERE path LIKE '%/run.sh'", (wrong,)).rowcount == 1

    again = await capture(source, store)
    assert again.entries == first.entries and again.manifest_id == first.manifest_id
    assert again.reused == 4 and not store.has(wrong)


async def test_full_verify_reads_every_file(tmp_path: Path, store: ContentStore) -> None:
    root = tmp_path / "site"
    make_tree(root, tmp_path / "outside")
    cache = HashCache(tmp_path / "cache.sqlite3", racy_ns=0)
    source = FolderSource("site", root, cache=cache, verify="full")
    await capture(source, store)
    again = await capture(source, store)
    assert again.reused == 0 and again.stored_bytes == 0


async def test_recently_changed_files_are_not_cached(tmp_path: Path, store: ContentStore) -> None:
    root = tmp_path / "site"
    root.mkdir()
    (root / "fresh.txt").write_text("just written")
    source = FolderSource("site", root, cache=HashCache(tmp_path / "cache.sqlite3"))
    await capture(source, store)
    assert (await capture(source, store)).reused == 0  # within the racy window: read again


async def test_a_damaged_cache_file_is_rebuilt(tmp_path: Path, store: ContentStore) -> None:
    root = tmp_path / "site"
    make_tree(root, tmp_path / "outside")
    (tmp_path / "cache.sqlite3").write_bytes(b"this is not a database" * 100)
    source = FolderSource("site", root, cache=HashCache(tmp_path / "cache.sqlite3", racy_ns=0))
    await capture(source, store)
    assert (await capture(source, store)).reused == 5


@pytest.mark.parametrize("problem", ["missing", "file"])
async def test_a_missing_path_fails_clearly(tmp_path: Path, store: ContentStore, problem: str) -> None:
    path = tmp_path / "nowhere"
    if problem == "file":
        path.write_text("not a folder")
    source = FolderSource("site", path)
    with pytest.raises(OperationFailed) as raised:
        await source.capture()
    assert raised.value.code == "SOURCE_UNAVAILABLE"
    assert raised.value.message.startswith("source 'site': path ")
    info = await source.describe()
    assert not info.reachable and info.problem and str(path) in info.problem


async def test_describe_counts_what_would_be_captured(tmp_path: Path) -> None:
    root = tmp_path / "site"
    make_tree(root, tmp_path / "outside")
    info = await FolderSource("site", root, exclude=["*.bin"]).describe()
    assert info.reachable and info.problem is None and info.location == str(root)
    counted = [p for p in root.rglob("*") if not stat.S_ISDIR(p.lstat().st_mode) and p.suffix != ".bin"]
    assert info.size_bytes == sum(p.lstat().st_size for p in counted)  # a link counts its target's length
    assert info.detail == "4 files, 5 folders, 2 links"


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give files to another owner")
async def test_apply_as_root_keeps_current_owners(tmp_path: Path, store: ContentStore) -> None:
    root = tmp_path / "site"
    (root / "conf").mkdir(parents=True)
    (root / "conf" / "app.yaml").write_text("v: 1")
    tally = await capture(FolderSource("site", root), store)
    for path in (root, root / "conf", root / "conf" / "app.yaml"):
        os.chown(path, 1234, 4321)
    (root / "conf" / "app.yaml").write_text("v: 2")

    await FolderSource("site", root).apply(tally.entries, store.open)

    owners = {(p.stat().st_uid, p.stat().st_gid) for p in (root, root / "conf", root / "conf" / "app.yaml")}
    assert owners == {(1234, 4321)}
    assert (root / "conf" / "app.yaml").read_text() == "v: 1"


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give files to another owner")
async def test_apply_as_root_keeps_mixed_owners_and_new_files_take_their_folders(
    tmp_path: Path, store: ContentStore
) -> None:
    root = tmp_path / "site"
    (root / "theirs").mkdir(parents=True)
    (root / "mine.txt").write_text("root's")
    (root / "theirs" / "a.txt").write_text("a")
    (root / "theirs" / "new.txt").write_text("new")
    tally = await capture(FolderSource("site", root), store)
    (root / "theirs" / "new.txt").unlink()  # the apply brings it back into a folder of 1234's
    os.chown(root / "theirs", 1234, 4321)
    os.chown(root / "theirs" / "a.txt", 1234, 4321)

    await FolderSource("site", root).apply(tally.entries, store.open)

    def owner(path: Path) -> tuple[int, int]:
        return path.stat().st_uid, path.stat().st_gid

    assert owner(root / "mine.txt") == (os.geteuid(), os.getegid())
    assert owner(root / "theirs") == owner(root / "theirs" / "a.txt") == (1234, 4321)
    assert owner(root / "theirs" / "new.txt") == (1234, 4321)


async def test_staging_leaves_the_folder_untouched_until_commit(tmp_path: Path, store: ContentStore) -> None:
    root = tmp_path / "site"
    make_tree(root, tmp_path / "outside")
    before = state(root)
    source = FolderSource("site", root)
    tally = await capture(source, store)
    (root / "added.txt").write_text("later")
    changed = state(root)

    staged = await asyncio.to_thread(source.stage, tally.entries, store.open)
    assert state(root) == changed  # built beside the folder, not in it
    await staged.commit()
    assert state(root) == before
    wait_for_removals()
    assert any(name.startswith(".site.backups-trash-") for name in os.listdir(tmp_path))  # until tidy
    await staged.tidy()
    wait_for_removals()
    assert sorted(os.listdir(tmp_path)) == ["blobs", "outside", "site"]

    (root / "added.txt").write_text("later")
    changed = state(root)
    staged = await asyncio.to_thread(source.stage, tally.entries, store.open)
    await staged.discard()
    assert state(root) == changed
    assert sorted(os.listdir(tmp_path)) == ["blobs", "outside", "site"]


async def test_damaged_content_among_many_files_stops_staging_and_leaves_nothing(
    tmp_path: Path, store: ContentStore
) -> None:
    root = tmp_path / "site"
    for index in range(200):  # enough for both writer threads to be busy when one fails
        (root / f"d{index % 7}").mkdir(parents=True, exist_ok=True)
        (root / f"d{index % 7}" / f"f{index}.json").write_text(f'{{"n": {index}}}\n' * (index + 1))
    tally = await capture(FolderSource("site", root), store)
    victim = next(e for e in tally.entries if e.path == "d3/f150.json")
    blob = store.path_of(victim.sha256 or "")
    blob.write_bytes(blob.read_bytes().replace(b"150", b"151"))  # same size, other bytes
    shutil.rmtree(root / "d0")

    with pytest.raises(OperationFailed) as raised:
        await asyncio.to_thread(FolderSource("site", root).stage, tally.entries, store.open)
    assert raised.value.code == "CONTENT_DAMAGED" and "d3/f150.json" in raised.value.message
    assert not (root / "d0").exists()
    assert sorted(os.listdir(tmp_path)) == ["blobs", "site"]


async def test_staging_stops_when_asked_and_leaves_nothing(tmp_path: Path, store: ContentStore) -> None:
    root = tmp_path / "site"
    make_tree(root, tmp_path / "outside")
    tally = await capture(FolderSource("site", root), store)
    written: list[int] = []

    def stage() -> object:
        return FolderSource("site", root).stage(
            tally.entries, store.open, on_bytes=written.append, should_stop=lambda: len(written) >= 2
        )

    with pytest.raises(StagingStopped):
        await asyncio.to_thread(stage)
    assert 2 <= len(written) < len([e for e in tally.entries if e.kind is EntryKind.FILE])
    assert sorted(os.listdir(tmp_path)) == ["blobs", "outside", "site"]


async def test_an_apply_remembers_what_it_wrote_and_a_later_change_is_still_seen(
    tmp_path: Path, store: ContentStore
) -> None:
    root = tmp_path / "site"
    make_tree(root, tmp_path / "outside")
    cache = HashCache(tmp_path / "cache.sqlite3", racy_ns=0)
    source = FolderSource("site", root, cache=cache)
    tally = await capture(FolderSource("site", root), store)  # without the cache: it knows nothing
    (root / "run.sh").write_text("changed")

    await source.apply(tally.entries, store.open)

    digests = {e.path: e.sha256 for e in tally.entries if e.kind is EntryKind.FILE}
    hints = {item.path: item.digest for item in await source.capture() if item.kind is EntryKind.FILE}
    assert hints == digests  # each file's digest, known without reading it again

    # Same size, mtime put back: the write moved the mtime (and the ctime), so it is seen.
    data = (root / "secret.key").read_bytes()
    (root / "secret.key").write_bytes(bytes(b ^ 0xFF for b in data))
    os.utime(root / "secret.key", ns=(OLD, OLD))
    hints = {item.path: item.digest for item in await source.capture() if item.kind is EntryKind.FILE}
    assert hints["secret.key"] is None and hints["run.sh"] == digests["run.sh"]


async def test_an_apply_does_not_remember_files_whose_mtime_is_recent(tmp_path: Path, store: ContentStore) -> None:
    root = tmp_path / "site"
    root.mkdir()
    (root / "fresh.txt").write_text("written just now")  # its mtime is within the racy window
    cache = HashCache(tmp_path / "cache.sqlite3")
    tally = await capture(FolderSource("site", root), store)
    source = FolderSource("site", root, cache=cache)

    await source.apply(tally.entries, store.open)

    assert [item.digest for item in await source.capture()] == [None]


async def test_the_old_tree_goes_to_the_trash_and_a_dead_process_trash_is_taken_out(
    tmp_path: Path, store: ContentStore
) -> None:
    root = tmp_path / "site"
    make_tree(root, tmp_path / "outside")
    before = state(root)
    source = FolderSource("site", root)
    tally = await capture(source, store)
    leftover = trash_name(root)  # what a process killed while removing an old tree leaves
    (leftover / "x" / "y").mkdir(parents=True)
    (leftover / "x" / "y" / "old.txt").write_text("old")
    os.chmod(leftover / "x", 0o500)  # a read-only folder in it too
    (root / "added.txt").write_text("later")

    await source.apply(tally.entries, store.open)  # takes the leftover out before it starts

    assert state(root) == before
    wait_for_removals()
    assert sorted(os.listdir(tmp_path)) == ["blobs", "outside", "site"]
    take_out(root)  # nothing left to do
    assert sorted(os.listdir(tmp_path)) == ["blobs", "outside", "site"]
