"""The content store with packs, without a server: where blobs go, sealing, collection and
rewrite (the database's side is tested through the server in tests/api/test_packs.py)."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

from server.storage.blobs.content_store import ContentStore
from server.storage.blobs.packs import MAGIC


def packs_of(root: Path) -> dict[str, bytes]:
    return {p.name.removesuffix(".pack"): p.read_bytes() for p in (root / "packs").glob("*.pack")}


def test_small_blobs_are_appended_to_one_pack_and_read_back(tmp_path: Path) -> None:
    store = ContentStore(tmp_path, packs=True)
    blobs = [f"blob {n}\n".encode() * (n + 1) for n in range(5)]
    digests = [store.put_bytes(data)[0] for data in blobs]
    assert store.put_bytes(blobs[0]) == (digests[0], len(blobs[0]), False), "stored once"
    (pack,) = packs_of(tmp_path).values()
    assert pack == MAGIC + b"".join(blobs)
    assert not list(tmp_path.glob("??/*")), "no loose blob"
    for digest, data in zip(digests, blobs, strict=True):
        assert store.has(digest) and store.holds(digest, len(data)) and not store.holds(digest, len(data) + 1)
        assert store.read(digest, 4) == data[:4] and store.open(digest).read() == data
        assert store.size(digest) == len(data) and store.verify(digest)
    assert set(store.unsynced()) == set(digests)
    empty, _, _ = store.put_bytes(b"")
    assert (tmp_path / empty[:2] / empty[2:]).is_file(), "the empty blob stays loose"
    big, _, _ = store.put_stream(io.BytesIO(b"x" * (2 * 1024 * 1024)))
    assert (tmp_path / big[:2] / big[2:]).is_file(), "a streamed big blob stays loose"


def test_sync_seals_the_pack_and_new_blobs_go_to_another(tmp_path: Path) -> None:
    store = ContentStore(tmp_path, packs=True)
    first, _, _ = store.put_bytes(b"first")
    store.sync()
    assert store.unsynced() == set()
    second, _, _ = store.put_bytes(b"second")
    assert len(packs_of(tmp_path)) == 2
    assert store.packs.index.get(first).pack != store.packs.index.get(second).pack  # type: ignore[union-attr]
    assert store.packs.index.get(first).pack in store.packs.index.sealed  # type: ignore[union-attr]
    assert store.packs.unindexed([first, second]).keys() == {first, second}
    store.packs.mark_indexed([first])
    assert store.packs.unindexed([first, second]).keys() == {second}


def test_a_damaged_range_fails_verify_only_for_its_blob(tmp_path: Path) -> None:
    store = ContentStore(tmp_path, packs=True)
    a, _, _ = store.put_bytes(b"aaaa")
    b, _, _ = store.put_bytes(b"bbbb")
    store.sync()
    where = store.packs.index.get(a)
    assert where is not None
    path = tmp_path / "packs" / f"{where.pack}.pack"
    data = bytearray(path.read_bytes())
    data[where.start + 1] ^= 1
    path.write_bytes(bytes(data))
    assert not store.verify(a) and store.verify(b)


def test_collection_then_rewrite_keeps_live_and_pinned_blobs(tmp_path: Path) -> None:
    store = ContentStore(tmp_path, packs=True)
    blobs = {store.put_bytes(f"content {n}".encode() * 50)[0]: f"content {n}".encode() * 50 for n in range(10)}
    store.sync()
    digests = list(blobs)
    store.unpin(digests)
    store.pin([digests[1]])  # an operation relies on it, though nothing references it
    (old,) = packs_of(tmp_path)
    unpacked: list[str] = []
    store.collect(digests[1:], lambda digest: False, unpacked)
    assert set(unpacked) == set(digests[2:]), "the pinned one stays"
    assert store.packs.packs_to_rewrite(0.5) == [[old]]
    new, size, moves = store.packs.write_rewritten([old])
    assert set(moves) == {digests[0], digests[1]}
    store.packs.switch_packs([old], new, size, moves)
    assert set(packs_of(tmp_path)) == {new} and size == len(packs_of(tmp_path)[new])
    for digest in digests[:2]:
        assert store.open(digest).read() == blobs[digest] and store.verify(digest)
    for digest in digests[2:]:
        assert not store.has(digest)
    store.unpin([digests[1]])
    store.collect(digests, lambda digest: False)
    assert store.packs.remove_dead_packs() == [new] and packs_of(tmp_path) == {}


def test_the_index_read_from_the_database_finds_blobs_of_earlier_runs(tmp_path: Path) -> None:
    store = ContentStore(tmp_path, packs=True)
    digest, _, _ = store.put_bytes(b"kept across a restart")
    store.sync()
    where = store.packs.index.get(digest)
    assert where is not None
    torn = ContentStore(tmp_path, packs=True)
    torn.put_bytes(b"never recorded")  # a pack no row names: removed by the sweep
    again = ContentStore(tmp_path, packs=True)
    again.packs.load_index({where.pack: where.start + where.size}, [(digest, where.pack, where.start, where.size)])
    assert again.read(digest, 100) == b"kept across a restart"
    assert hashlib.sha256(again.open(digest).read()).hexdigest() == digest
    assert len(packs_of(tmp_path)) == 2
    assert len(again.packs.remove_dead_packs()) == 1 and set(packs_of(tmp_path)) == {where.pack}


def test_small_packs_are_merged_once_there_are_several(tmp_path: Path) -> None:
    store = ContentStore(tmp_path, packs=True)
    contents = {}
    for number in range(9):
        for part in range(2):
            data = f"capture {number} part {part}".encode()
            contents[store.put_bytes(data)[0]] = data
        store.sync()  # each capture seals a small pack of its own
    assert len(packs_of(tmp_path)) == 9 and store.packs.packs_to_rewrite(0.5) == [sorted(packs_of(tmp_path))]
    old = sorted(packs_of(tmp_path))
    new, size, moves = store.packs.write_rewritten(old)
    store.packs.switch_packs(old, new, size, moves)
    assert set(packs_of(tmp_path)) == {new} and set(moves) == set(contents)
    assert all(store.open(digest).read() == data and store.verify(digest) for digest, data in contents.items())
    assert store.packs.packs_to_rewrite(0.5) == []
