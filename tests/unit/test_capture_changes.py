"""A file that changes while a capture reads it is read again (issue 12, item 11), and a big
file's content the store already holds is hashed, never copied to a temp file (item 10).

Real folders, a real ContentStore, the real capture code (store_captured); the writer is a
thread of the test's own, so when it writes is under the test's control.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import pytest

from server.model.errors import OperationFailed
from server.model.records import EntryKind, Operation, OperationKind, OperationStatus
from server.operations.live import LiveOperation, OperationContext
from server.services.capture.items import ATTEMPTS, store_one
from server.services.capture.store import CaptureTally, store_captured
from server.sources.base import CapturedItem, Source
from server.sources.folder.source import FolderSource
from server.storage.blobs.content_store import ContentStore

BIG = 3 * 1024 * 1024  # above SMALL_ITEM: hashed first, then stored


def context() -> OperationContext:
    op = Operation(
        id="op_test",
        kind=OperationKind.CREATE_RESTORE_POINT,
        status=OperationStatus.RUNNING,
        progress=0.0,
        stage=None,
        created_at=datetime.now(UTC),
        started_at=None,
        finished_at=None,
        requested_by=None,
        dismissed=False,
        error=None,
        restore_point_id=None,
        local_copy_id=None,
    )
    return OperationContext(LiveOperation(op=op), notify=lambda live: None)


def store_items(source: Source, items: list[CapturedItem], store: ContentStore) -> CaptureTally:
    pinned: list[str] = []
    try:
        return asyncio.run(store_captured(context(), store, [(source, items)], pinned))
    finally:
        store.unpin(pinned)


def blob(store: ContentStore, digest: str) -> bytes:
    with store.open(digest) as stream:
        return stream.read()


@pytest.mark.parametrize("size", [100, BIG])
def test_a_file_that_changes_once_then_settles_is_captured_as_it_settled(tmp_path: Path, size: int) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "grows.log").write_bytes(b"x" * size)
    (site / "still.txt").write_text("unchanged\n")
    store = ContentStore(tmp_path / "blobs")
    source = FolderSource("site", site)
    items = asyncio.run(source.capture())
    with open(site / "grows.log", "ab") as log:  # after the walk, before the read: once
        log.write(b"one more line\n")
    settled = (site / "grows.log").read_bytes()

    tally = store_items(source, list(items), store)

    entry = next(e for e in tally.entries if e.path == "grows.log")
    assert entry.size == len(settled) == size + 14
    assert entry.sha256 == hashlib.sha256(settled).hexdigest()
    assert entry.mtime is not None and entry.mtime.timestamp() == pytest.approx(os.stat(site / "grows.log").st_mtime)
    assert blob(store, entry.sha256) == settled
    still = next(e for e in tally.entries if e.path == "still.txt")
    assert still.sha256 is not None and blob(store, still.sha256) == b"unchanged\n"
    assert set(store.all_digests()) == {entry.sha256, still.sha256}  # no blob of the first read


def test_a_file_replaced_after_the_walk_is_captured_as_the_new_file(tmp_path: Path) -> None:
    """Same size, other inode (an editor's save): the one the walk saw is gone, so it is read again."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "conf.yaml").write_text("port: 80\n")
    store = ContentStore(tmp_path / "blobs")
    source = FolderSource("site", site)
    items = asyncio.run(source.capture())
    (site / "conf.new").write_text("port: 81\n")
    os.replace(site / "conf.new", site / "conf.yaml")

    entry = store_items(source, list(items), store).entries[0]
    assert entry.sha256 == hashlib.sha256(b"port: 81\n").hexdigest()
    assert blob(store, entry.sha256) == b"port: 81\n"


@pytest.mark.parametrize("size", [100, BIG])
def test_a_file_that_keeps_growing_fails_the_capture_naming_it(tmp_path: Path, size: int) -> None:
    """A log written to all the time: it grows between each stat and the read that follows.

    The writer is the item's own `open` (a line appended, then the real open), so the file
    grows before every read the capture makes, on every attempt: no thread whose turn on a
    busy machine decides whether a read happens to see the file still."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "busy.log").write_bytes(b"y" * size)
    (site / "quiet.txt").write_text("calm\n")
    store = ContentStore(tmp_path / "blobs")
    source = FolderSource("site", site)
    opened: list[int] = []

    def growing(item: CapturedItem) -> CapturedItem:
        real_open, real_refresh = item.open, item.refresh
        assert real_open is not None and real_refresh is not None

        def open_after_a_write() -> BinaryIO:
            with open(site / "busy.log", "ab") as log:
                log.write(b"a line of a busy log\n")
            opened.append(os.stat(site / "busy.log").st_size)
            return real_open()

        return replace(item, open=open_after_a_write, refresh=lambda: growing(real_refresh()))

    items = [growing(i) if i.path == "busy.log" else i for i in asyncio.run(source.capture())]
    with pytest.raises(OperationFailed) as failure:
        store_items(source, items, store)

    assert failure.value.code == "SOURCE_CHANGED"
    assert "site/busy.log" in failure.value.message and f"on each of {ATTEMPTS} reads" in failure.value.message
    assert len(opened) == ATTEMPTS  # read again from a new stat each time, then given up
    # Nothing of the busy file was stored (the quiet one may have been, before the failure).
    assert set(store.all_digests()) <= {hashlib.sha256(b"calm\n").hexdigest()}


def test_a_big_file_the_store_holds_is_hashed_not_copied_again(tmp_path: Path) -> None:
    """Found in the store (here: not in any hash cache), a big file's content is not written
    to a temp file first: with the temp folder unusable, as on a disk without room for a
    copy, the capture still succeeds, and the blob is the same file as before."""
    content = os.urandom(BIG)
    store = ContentStore(tmp_path / "blobs")
    digest, _, new = store.put_stream(io.BytesIO(content))
    assert new
    store.unpin([digest])
    before = os.stat(store.path_of(digest))
    site = tmp_path / "site"
    site.mkdir()
    (site / "moved.bin").write_bytes(content)  # e.g. a file renamed: the cache knows no digest for it
    os.rmdir(store.root / "tmp")
    (store.root / "tmp").write_text("no temp file can be made in here\n")

    tally = store_items(FolderSource("site", site), list(asyncio.run(FolderSource("site", site).capture())), store)

    assert [e.sha256 for e in tally.entries] == [digest] and tally.stored_bytes == 0
    after = os.stat(store.path_of(digest))
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert [p for p in store.root.rglob("*") if p.name.startswith((".put-", "put-"))] == []


def test_a_new_big_file_is_stored_and_must_hash_the_same_twice(tmp_path: Path) -> None:
    """New content is read again to be written: stored when it hashes as it did, and not at
    all when it does not (content changed between the two reads, size kept)."""
    first, second = os.urandom(BIG), os.urandom(BIG)
    opened: list[int] = []

    def open_it(contents: list[bytes]) -> io.BytesIO:
        opened.append(1)
        return io.BytesIO(contents[min(len(opened), len(contents)) - 1])

    store = ContentStore(tmp_path / "blobs")
    steady = CapturedItem("steady.bin", EntryKind.FILE, BIG, 0o644, None, lambda: open_it([first]))
    stored = store_one(store, Named(), steady, lambda n: None, lambda: None)
    assert stored.new and stored.digest == hashlib.sha256(first).hexdigest() and blob(store, stored.digest) == first
    assert stored.digest in store.unsynced()  # made durable with the rest before a restore point refers to it
    store.unpin([stored.digest])

    opened.clear()
    shifty = CapturedItem("shifty.bin", EntryKind.FILE, BIG, 0o644, None, lambda: open_it([second, first[::-1]]))
    with pytest.raises(OperationFailed) as failure:
        store_one(store, Named(), shifty, lambda n: None, lambda: None)
    assert failure.value.code == "SOURCE_CHANGED" and "shifty.bin" in failure.value.message
    assert set(store.all_digests()) == {stored.digest}  # neither read was stored
    assert [p for p in store.root.rglob("*") if p.name.startswith((".put-", "put-"))] == []


class Named:  # only its name is read when an error is reported
    name = "site"
