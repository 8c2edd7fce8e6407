"""Small items are stored by reader threads: the manifest keeps its order, and when one item
fails, every blob the others stored is still handed back to be released."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import pytest

from server.model.errors import OperationFailed
from server.model.records import EntryKind
from server.services.capture.store import MAX_READING, CaptureTally, _release_ahead, _start_big_items, _store_batch
from server.sources.base import CapturedItem
from server.storage.blobs.content_store import ContentStore


@dataclass
class FakeSourceName:  # only its name is read when an error is reported
    name: str = "site"


def item(path: str, data: bytes, *, size: int | None = None, broken: bool = False) -> CapturedItem:
    def open_it() -> io.BytesIO:
        if broken:
            raise PermissionError(13, "Permission denied")
        return io.BytesIO(data)

    return CapturedItem(path, EntryKind.FILE, len(data) if size is None else size, 0o644, None, open_it)


def run_batch(store: ContentStore, items: list[CapturedItem], pinned: list[str], ahead: dict | None = None) -> list:
    done: list = []
    position = 0
    while position < len(items):
        batch = _store_batch(
            store, FakeSourceName(), items, position, pinned, CaptureTally(), lambda n: None, lambda: None, ahead
        )
        done += batch
        position += len(batch)
    return done


def assert_stored_in_order(store: ContentStore, items: list[CapturedItem], batch: list, pinned: list[str]) -> None:  # type: ignore[type-arg]
    """Every item came back in its place, its blob holds its bytes, and each blob is pinned."""
    assert [entry.path for entry, _ in batch] == [i.path for i in items]
    for (_entry, digest), original in zip(batch, items, strict=True):
        with store.open(digest) as blob:
            assert blob.read() == original.open().read()  # type: ignore[misc]
    assert sorted(pinned) == sorted(digest for _, digest in batch)


def test_order_and_digests_are_kept(tmp_path: Path) -> None:
    store = ContentStore(tmp_path / "blobs")
    items = [item(f"f{i}.json", f'{{"n": {i}}}'.encode()) for i in range(300)]
    pinned: list[str] = []
    batch = run_batch(store, items, pinned)
    assert_stored_in_order(store, items, batch, pinned)


@pytest.mark.parametrize(
    ("bad", "code"), [("unreadable", "SOURCE_UNAVAILABLE"), ("changed", "SOURCE_CHANGED"), ("grew", "SOURCE_CHANGED")]
)
def test_a_failing_item_leaves_every_stored_blob_in_pinned(tmp_path: Path, bad: str, code: str) -> None:
    store = ContentStore(tmp_path / "blobs")
    items = [item(f"f{i}.json", f"content {i}".encode()) for i in range(40)]
    sizes = {"changed": 999, "grew": 3}  # listed larger than it is, or smaller (read one byte past)
    items[17] = item("f17.json", b"content 17", broken=bad == "unreadable", size=sizes.get(bad))
    pinned: list[str] = []
    with pytest.raises(OperationFailed) as failure:
        _store_batch(store, FakeSourceName(), items, 0, pinned, CaptureTally(), lambda n: None, lambda: None)
    assert failure.value.code == code and "f17.json" in failure.value.message
    stored = set(store.all_digests())
    assert set(pinned) == stored  # nothing stored that the caller cannot release and collect
    assert len(stored) == 39  # a read that did not match what was listed stores nothing either
    store.unpin(pinned)
    store.collect(pinned, lambda digest: False)
    assert list(store.all_digests()) == []


def test_big_items_stored_beside_the_small_ones_keep_their_place(tmp_path: Path) -> None:
    store = ContentStore(tmp_path / "blobs")
    big = [bytes([n]) * (2 * 1024 * 1024 + n) for n in range(3)]  # past SMALL_ITEM: the big-item thread
    items = [item(f"f{i:03}.json", f"small {i}".encode()) for i in range(1200)]
    for n, data in enumerate(big):
        items.insert(100 + 400 * n, item(f"big{n}.bin", data))
    pinned: list[str] = []
    batch = run_batch(store, items, pinned)
    assert_stored_in_order(store, items, batch, pinned)


def test_a_failing_big_item_leaves_every_stored_blob_in_pinned(tmp_path: Path) -> None:
    store = ContentStore(tmp_path / "blobs")
    items = [item(f"f{i}.json", f"content {i}".encode()) for i in range(600)]
    items[5] = item("big.bin", b"b" * (2 * 1024 * 1024), size=2 * 1024 * 1024 + 1)  # shorter than listed
    pinned: list[str] = []
    with pytest.raises(OperationFailed) as failure:
        run_batch(store, items, pinned)
    assert failure.value.code == "SOURCE_CHANGED" and "big.bin" in failure.value.message
    assert set(pinned) == set(store.all_digests())
    store.unpin(pinned)
    store.collect(pinned, lambda digest: False)
    assert list(store.all_digests()) == []


def test_big_items_started_ahead_keep_their_place(tmp_path: Path) -> None:
    store = ContentStore(tmp_path / "blobs")
    items = [item(f"f{i:03}.json", f"small {i}".encode()) for i in range(700)]
    items += [item(f"z{n}.bin", bytes([n]) * (2 * 1024 * 1024 + n)) for n in range(3)]  # last, as in the bench
    ahead = _start_big_items(store, FakeSourceName(), items, lambda: None)  # type: ignore[arg-type]
    assert sorted(ahead) == [700, 701, 702]
    pinned: list[str] = []
    batch = run_batch(store, items, pinned, ahead)
    assert ahead == {}  # each taken by the batch that reached it
    assert_stored_in_order(store, items, batch, pinned)


def test_big_items_started_ahead_are_released_when_the_capture_stops(tmp_path: Path) -> None:
    store = ContentStore(tmp_path / "blobs")
    items = [item(f"f{i}.json", f"content {i}".encode()) for i in range(MAX_READING + 50)]
    items[3] = item("f3.json", b"content 3", broken=True)  # fails the first batch, which ends before the big ones
    big = [bytes([n]) * (2 * 1024 * 1024) for n in range(2)]
    items += [item(f"z{n}.bin", data) for n, data in enumerate(big)]
    ahead = _start_big_items(store, FakeSourceName(), items, lambda: None)  # type: ignore[arg-type]
    pinned: list[str] = []
    with pytest.raises(OperationFailed):
        run_batch(store, items, pinned, ahead)
    assert len(ahead) == 2  # no batch reached them
    _release_ahead(ahead, pinned)
    stored = set(store.all_digests())
    assert set(pinned) == stored and {hashlib.sha256(data).hexdigest() for data in big} <= stored
    store.unpin(pinned)
    store.collect(pinned, lambda digest: False)
    assert list(store.all_digests()) == []
