"""The content store's checked reads: open_checked checks a blob whole before handing it out;
read_checked holds its last piece back until the hash is known (never a damaged blob's end)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from server.storage.blobs.content_store import CHUNK_SIZE, BlobDamaged, ContentStore


def damaged_store(tmp_path: Path, data: bytes) -> tuple[ContentStore, str]:
    store = ContentStore(tmp_path)
    digest, _, _ = store.put_stream(io.BytesIO(data))
    blob = store.path_of(digest)
    blob.chmod(0o644)
    changed = bytearray(data)
    changed[-1] ^= 0xFF  # the very last byte: the held-back piece must never go out
    blob.write_bytes(bytes(changed))
    return store, digest


def test_checked_reads_give_the_blob(tmp_path: Path) -> None:
    store = ContentStore(tmp_path, packs=True)
    big = os.urandom(2 * CHUNK_SIZE + 3)
    for data in (b"", b"small, packed", big, os.urandom(CHUNK_SIZE)):
        digest, _, _ = store.put_bytes(data) if len(data) <= CHUNK_SIZE else store.put_stream(io.BytesIO(data))
        store.sync()
        with store.open_checked(digest) as blob:
            assert blob.read() == data
        pieces = list(store.read_checked(digest))
        assert b"".join(pieces) == data and all(pieces) and all(len(p) <= CHUNK_SIZE for p in pieces)


def test_a_damaged_blob_is_refused_before_any_byte(tmp_path: Path) -> None:
    store, digest = damaged_store(tmp_path, os.urandom(CHUNK_SIZE // 2))
    with pytest.raises(BlobDamaged):
        store.open_checked(digest)
    with pytest.raises(BlobDamaged):
        next(store.read_checked(digest))  # one piece: nothing of it is given out


def test_a_damaged_big_blob_gives_out_nothing_of_its_last_piece(tmp_path: Path) -> None:
    data = os.urandom(3 * CHUNK_SIZE + 10)
    store, digest = damaged_store(tmp_path, data)
    given = bytearray()
    with pytest.raises(BlobDamaged):
        for piece in store.read_checked(digest):
            given += piece
    assert bytes(given) == data[: 3 * CHUNK_SIZE]  # all but the last piece, which held the damage
    with pytest.raises(FileNotFoundError):
        store.open_checked("0" * 64)
