"""What the content store holds, as a test sees it on disk and in the database: loose blobs
(`blobs/ab/cdef...`) and packed ones (rows of `packed_blob`, ranges of `blobs/packs/*.pack`)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, text

from tests.support.server_process import ServerCommon


def _loose(server: ServerCommon) -> dict[str, Path]:
    return {p.parent.name + p.name: p for p in (server.data_dir / "blobs").glob("??/*") if p.is_file()}


def packed_sizes(server: ServerCommon) -> dict[str, int]:
    """digest -> size of every packed blob the database's index holds."""
    assert server.database is not None
    engine = create_engine(server.database.url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT sha256, size_bytes FROM packed_blob"))
            return {digest: size for digest, size in rows}
    finally:
        engine.dispose()


def stored_blobs(server: ServerCommon) -> set[str]:
    """The digest of every blob the store holds, loose or packed; and `pack:<id>` for any
    pack file no row names (a leftover that a test of "nothing stays" must see)."""
    packed = packed_sizes(server)
    assert server.database is not None
    engine = create_engine(server.database.url)
    try:
        with engine.connect() as connection:
            named = set(connection.execute(text("SELECT DISTINCT pack_id FROM packed_blob")).scalars())
    finally:
        engine.dispose()
    files = {p.name.removesuffix(".pack") for p in (server.data_dir / "blobs" / "packs").glob("*.pack")}
    return set(_loose(server)) | set(packed) | {f"pack:{pack}" for pack in files - named}


def stored_sizes(server: ServerCommon) -> dict[str, int]:
    """digest -> size of every blob the store holds, loose or packed."""
    return {**packed_sizes(server), **{digest: path.stat().st_size for digest, path in _loose(server).items()}}


def store_on_disk(server: ServerCommon) -> tuple[int, int]:
    """(blob count, bytes on disk): loose blobs, and pack files whole."""
    loose = _loose(server)
    packs = sum(p.stat().st_size for p in (server.data_dir / "blobs" / "packs").glob("*.pack"))
    return len(loose) + len(packed_sizes(server)), sum(p.stat().st_size for p in loose.values()) + packs
