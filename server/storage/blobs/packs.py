"""Pack files: small blobs appended to immutable files, and the in-memory index of them.

A pack is `packs/<pack id>.pack`: an 8-byte magic, then blobs back to back, nothing else.
What is where (digest -> pack, start, size) lives in the database (tables `pack` and
`packed_blob`), and in memory here for the threads that read blobs. A pack is appended to
only until it is sealed (flushed to disk, or full); after that it never changes, and is
only ever replaced whole by a rewrite that keeps its live blobs. That is the shape an object
store could hold later: immutable objects read by range, the index beside them in the
database.
"""

from __future__ import annotations

import os
import secrets
import threading
from dataclasses import dataclass, field

from server.model.names import is_sha256

MAGIC = b"BKPACK1\n"
PACK_SUFFIX = ".pack"
PACK_LIMIT = 32 * 1024 * 1024  # a pack is sealed once it holds this much
REWRITE_BELOW = 0.5  # a sealed pack whose live bytes fall under this share is rewritten
SMALL_PACK = 4 * 1024 * 1024  # packs under this (a capture's few new blobs) are merged...
MERGE_SMALL = 8  # ...once there are this many of them


_LOW = 0xFFFFFFFF


def new_pack_id() -> str:
    return "pk_" + secrets.token_hex(12)


def is_pack_id(name: str) -> bool:
    return len(name) == 27 and name.startswith("pk_") and all(c in "0123456789abcdef" for c in name[3:])


@dataclass(frozen=True, slots=True)
class Location:
    pack: str
    start: int
    size: int


@dataclass
class OpenPack:
    """The pack being appended to: its descriptor, and where the next blob goes."""

    id: str
    fd: int
    end: int = len(MAGIC)
    digests: list[str] = field(default_factory=list)


def _key(digest: str) -> bytes:
    # 32 bytes instead of a 64-character str (~113 bytes) per entry, for a big index.
    if not is_sha256(digest):
        raise ValueError(f"not a SHA-256 digest: {digest!r}")
    return bytes.fromhex(digest)


class PackIndex:
    """digest -> Location of every packed blob, with each pack's size and live bytes.

    Lookups take no lock (one dict read); changes happen under `lock`. `unindexed` are
    packed blobs whose rows are not in the database yet: the next restore point that uses
    them inserts those rows, in its own transaction.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        # One int per blob: (pack number << 64) | (start << 32) | size, pack numbers naming
        # `_packs`. 32-byte keys and one int instead of a 64-character str and a tuple of
        # three: ~140 bytes a blob against ~250.
        self._where: dict[bytes, int] = {}
        self._packs: list[str] = []
        self._numbers: dict[str, int] = {}
        self.sizes: dict[str, int] = {}  # pack id -> its file size (sealed) or end (open)
        self.live: dict[str, int] = {}  # pack id -> bytes of the blobs it holds still
        self.unindexed: set[str] = set()
        self.sealed: set[str] = set()  # flushed to disk: may be indexed and rewritten

    def _location(self, value: int) -> Location:
        return Location(self._packs[value >> 64], (value >> 32) & _LOW, value & _LOW)

    def _value(self, where: Location) -> int:
        if where.start > _LOW or where.size > _LOW:
            raise ValueError(f"a packed blob beyond 4 GiB: {where}")
        number = self._numbers.get(where.pack)
        if number is None:
            number = self._numbers[where.pack] = len(self._packs)
            self._packs.append(where.pack)
        return (number << 64) | (where.start << 32) | where.size

    def get(self, digest: str) -> Location | None:
        found = self._where.get(_key(digest))
        return self._location(found) if found is not None else None

    def __contains__(self, digest: str) -> bool:
        return _key(digest) in self._where

    def __len__(self) -> int:
        return len(self._where)

    def digests(self) -> list[str]:
        return [key.hex() for key in list(self._where)]

    def in_pack(self, pack: str) -> dict[str, Location]:
        with self.lock:
            number = self._numbers.get(pack)
            return {key.hex(): self._location(value) for key, value in self._where.items() if value >> 64 == number}

    def add(self, digest: str, where: Location, *, indexed: bool) -> None:
        """Under `lock`."""
        self._where[_key(digest)] = self._value(where)
        self.live[where.pack] = self.live.get(where.pack, 0) + where.size
        if not indexed:
            self.unindexed.add(digest)

    def drop(self, digest: str) -> Location | None:
        """Under `lock`."""
        found = self._where.pop(_key(digest), None)
        self.unindexed.discard(digest)
        if found is None:
            return None
        where = self._location(found)
        self.live[where.pack] -= where.size
        return where

    def forget_pack(self, pack: str) -> None:
        """Under `lock`: a pack removed, with no blob left in it."""
        self.sizes.pop(pack, None)
        self.live.pop(pack, None)
        self.sealed.discard(pack)


def pack_name(folder: str, pack: str) -> str:
    return f"{folder}/{pack}{PACK_SUFFIX}"


def create_pack(folder: str) -> OpenPack:
    pack = new_pack_id()
    fd = os.open(pack_name(folder, pack), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, MAGIC)
    except BaseException:
        os.close(fd)
        os.unlink(pack_name(folder, pack))
        raise
    return OpenPack(id=pack, fd=fd)


def pack_files(folder: str) -> list[str]:
    """The ids of the pack files in `folder` (torn ones too)."""
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    return [name[: -len(PACK_SUFFIX)] for name in names if name.endswith(PACK_SUFFIX) and is_pack_id(name[:-5])]
