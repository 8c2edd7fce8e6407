from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from server.model.manifests import manifest_checksum
from server.model.records import EntryKind, ManifestEntry
from server.storage.blobs.content_store import WRITEBACK_BYTES, ContentStore


def test_put_writes_each_blob_once(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    digest, size, new = store.put_stream(io.BytesIO(b"hello"))
    assert digest == hashlib.sha256(b"hello").hexdigest() and size == 5 and new
    assert store.put_bytes(b"hello") == (digest, 5, False)
    with store.open(digest) as blob:
        assert blob.read() == b"hello"
    assert list(store.all_digests()) == [digest]
    assert not list((tmp_path / "tmp").iterdir())


def test_pinned_blobs_survive_collection(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    kept, _, _ = store.put_bytes(b"kept")  # pinned twice: two operations rely on it
    store.put_bytes(b"kept")
    loose, _, _ = store.put_bytes(b"loose")
    store.unpin([loose, kept])
    freed = store.collect([kept, loose], is_referenced=lambda d: False)
    assert freed == len(b"loose")
    assert store.has(kept) and not store.has(loose)
    store.unpin([kept])
    assert store.collect([kept], is_referenced=lambda d: True) == 0  # referenced: stays
    assert store.collect([kept], is_referenced=lambda d: False) == 4
    assert list(store.all_digests()) == []


def test_verify_detects_corruption(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    digest, _, _ = store.put_bytes(b"original")
    assert store.verify(digest)
    store.path_of(digest).write_bytes(b"tampered")
    assert not store.verify(digest)
    store.path_of(digest).unlink()
    assert not store.verify(digest)


def test_manifest_checksum_depends_on_content_not_mtime() -> None:
    entry = ManifestEntry("settings", "a.json", EntryKind.FILE, 3, "a" * 64, 0o644, None)
    same = ManifestEntry("settings", "a.json", EntryKind.FILE, 3, "a" * 64, 0o644, None)
    other = ManifestEntry("settings", "a.json", EntryKind.FILE, 3, "b" * 64, 0o644, None)
    assert manifest_checksum([entry]) == manifest_checksum([same])
    assert manifest_checksum([entry]) != manifest_checksum([other])


def test_sync_makes_every_new_blob_durable_once(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    small, _, _ = store.put_bytes(b"small")
    big, _, _ = store.put_stream(io.BytesIO(b"x" * (3 * 1024 * 1024)))
    assert store.unsynced() == {small, big}
    store.sync()
    assert store.unsynced() == set()
    store.sync()  # nothing new: nothing to do
    assert store.put_bytes(b"small") == (small, 5, False)  # held already: nothing new to sync
    assert store.unsynced() == set()
    assert store.verify(small) and store.verify(big)


def test_holds_answers_by_name_and_size_and_a_pin_keeps_the_blob(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    digest, _, _ = store.put_bytes(b"held")
    store.unpin([digest])
    absent = hashlib.sha256(b"absent").hexdigest()
    assert store.holds(absent, 6) is False
    assert store.holds(digest, 5) is False  # a hint with the wrong size is not trusted
    assert store.holds(digest, 4) is True
    store.pin([digest])
    assert store.collect([digest], is_referenced=lambda d: False) == 0  # pinned: kept
    store.unpin([digest])
    assert store.collect([digest], is_referenced=lambda d: False) == 4
    assert store.holds(digest, 4) is False


def test_put_stream_handles_small_and_multi_chunk_streams(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    small = b"x" * 100
    big = bytes(range(256)) * 10_000  # 2.5 MB: several chunks
    for data in (small, big, b""):
        digest, size, new = store.put_stream(io.BytesIO(data))
        assert (digest, size, new) == (hashlib.sha256(data).hexdigest(), len(data), True)
        assert store.put_stream(io.BytesIO(data)) == (digest, len(data), False)
        with store.open(digest) as blob:
            assert blob.read() == data
    assert not list((tmp_path / "tmp").iterdir())


def test_small_blobs_are_written_beside_their_folder_and_leave_no_temp_file(tmp_path: Path) -> None:
    store = ContentStore(tmp_path / "blobs")
    digest, _, new = store.put_bytes(b"small config")
    assert new
    assert sorted(p.name for p in (tmp_path / "blobs" / digest[:2]).iterdir()) == [digest[2:]]
    assert list((tmp_path / "blobs" / "tmp").iterdir()) == []


def test_temp_files_a_dead_process_left_are_cleared_and_never_taken_for_blobs(tmp_path: Path) -> None:
    store = ContentStore(tmp_path / "blobs")
    digest, _, _ = store.put_bytes(b"kept")
    stale_beside = tmp_path / "blobs" / digest[:2] / ".put-999-1"
    stale_beside.write_bytes(b"half a blo")
    stale_shared = tmp_path / "blobs" / "tmp" / "put-999-2"
    stale_shared.write_bytes(b"half of a large blob")
    assert list(store.all_digests()) == [digest]
    store.clear_temporary()
    assert not stale_beside.exists() and not stale_shared.exists()
    assert list(store.all_digests()) == [digest] and store.verify(digest)


def test_read_returns_a_blob_whole_or_up_to_the_limit(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    data = bytes(range(256)) * 40
    digest = store.put_bytes(data)[0]
    assert store.read(digest, len(data) + 1) == data  # asking one byte more finds the end
    assert store.read(digest, 100) == data[:100]
    assert store.read(store.put_bytes(b"")[0], 10) == b""
    with pytest.raises(FileNotFoundError):
        store.read("0" * 64, 10)


def test_a_blob_sent_to_disk_while_written_keeps_its_bytes(tmp_path: Path) -> None:
    data = bytes(range(256)) * ((2 * WRITEBACK_BYTES + 12345) // 256)  # past two writeback points
    store = ContentStore(tmp_path / "blobs")
    digest, size, new = store.put_stream(io.BytesIO(data))
    assert (digest, size, new) == (hashlib.sha256(data).hexdigest(), len(data), True)
    store.sync()
    assert store.verify(digest) and store.size(digest) == len(data)
