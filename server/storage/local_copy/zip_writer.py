"""A ZIP writer for payloads made elsewhere: each member arrives deflated (or stored) with its
CRC-32 already known, so writing one is a header and its bytes; close() adds the central
directory.

zipfile computes every member's CRC-32 itself, with zlib's CRC (a fifth of zlib-ng's speed),
on the thread that writes, and takes no deflated bytes; the export deflates and checksums on
worker threads, so it writes the container itself. The records are the ones zipfile writes
(same versions, flags, Unix attributes and ZIP64 rules), so zipfile and Info-ZIP read them.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO

STORED = 0
DEFLATED = 8
ZIP64_LIMIT = (1 << 31) - 1  # zipfile's threshold: a size or offset past it goes in ZIP64 fields
_COUNT_LIMIT = 0xFFFF
_VERSION = 20  # deflate
_ZIP64_VERSION = 45
_MADE_ON_UNIX = 3
_UTF8_NAME = 0x800
_LOCAL = struct.Struct("<4s2B4HL2L2H")
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")
_END64 = struct.Struct("<4sQ2H2L4Q")
_LOCATOR64 = struct.Struct("<4sLQL")
_END = struct.Struct("<4s4H2LH")
_LOCAL_ZIP64 = struct.Struct("<HHQQ")

DateTime = tuple[int, int, int, int, int, int]


@dataclass(slots=True)
class _Member:
    name: bytes
    flags: int
    method: int
    time: int
    date: int
    external_attr: int
    size: int
    offset: int
    zip64_header: bool  # whether the local header carries the sizes in a ZIP64 field
    crc: int = 0
    packed_size: int = 0


class ZipWriter:
    """Writes members in order to `out` (a seekable file at position 0); close() ends the ZIP.

    Member names are not checked here: the caller has (no duplicates, safe paths).
    """

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._members: list[_Member] = []
        self._position = 0
        self._open: _Member | None = None

    @property
    def position(self) -> int:
        """Bytes written so far."""
        return self._position

    def add(
        self, name: str, *, date_time: DateTime, external_attr: int, method: int, size: int, crc: int, payload: bytes
    ) -> None:
        """Write a whole member: `payload` is its deflated (or stored) bytes, `crc` its content's CRC-32."""
        zip64 = size > ZIP64_LIMIT or len(payload) > ZIP64_LIMIT
        member = self._start(name, date_time, external_attr, method, size, zip64)
        member.crc, member.packed_size = crc, len(payload)
        self._write(_local_header(member))
        self._write(payload)

    def begin(self, name: str, *, date_time: DateTime, external_attr: int, method: int, size: int) -> None:
        """Start a member whose payload follows in parts (write); finish() records its CRC-32."""
        # As zipfile: ZIP64 sizes in the header if deflate might take the member past the limit.
        member = self._start(name, date_time, external_attr, method, size, size * 1.05 > ZIP64_LIMIT)
        self._write(_local_header(member))
        self._open = member

    def write(self, data: bytes) -> None:
        """Append payload bytes to the member begun last."""
        assert self._open is not None, "write() outside begin()/finish()"
        self._write(data)

    def finish(self, crc: int) -> None:
        """End the member begun last: its local header is rewritten with its CRC-32 and sizes."""
        member, self._open = self._open, None
        assert member is not None, "finish() without begin()"
        header_size = _LOCAL.size + len(member.name) + (_LOCAL_ZIP64.size if member.zip64_header else 0)
        member.crc, member.packed_size = crc, self._position - member.offset - header_size
        if member.packed_size > ZIP64_LIMIT and not member.zip64_header:
            raise ValueError(f"member {member.name!r} grew past the size its header allows")
        self._out.seek(member.offset)
        self._out.write(_local_header(member))
        self._out.seek(self._position)

    def close(self) -> None:
        """Write the central directory and the end records (ZIP64 ones where needed)."""
        assert self._open is None, "close() with a member still open"
        start = self._position
        for member in self._members:
            self._write(_central_header(member))
        count, size = len(self._members), self._position - start
        if count > _COUNT_LIMIT or start > ZIP64_LIMIT or size > ZIP64_LIMIT:
            end64 = self._position
            self._write(_END64.pack(b"PK\x06\x06", 44, _ZIP64_VERSION, _ZIP64_VERSION, 0, 0, count, count, size, start))
            self._write(_LOCATOR64.pack(b"PK\x06\x07", 0, end64, 1))
            count, size, start = min(count, _COUNT_LIMIT), min(size, 0xFFFFFFFF), min(start, 0xFFFFFFFF)
        self._write(_END.pack(b"PK\x05\x06", 0, 0, count, count, size, start, 0))

    def _start(
        self, name: str, date_time: DateTime, external_attr: int, method: int, size: int, zip64: bool
    ) -> _Member:
        assert self._open is None, "a member is still open"
        try:
            encoded, flags = name.encode("ascii"), 0
        except UnicodeEncodeError:
            encoded, flags = name.encode("utf-8"), _UTF8_NAME
        year, month, day, hour, minute, second = date_time
        member = _Member(
            name=encoded,
            flags=flags,
            method=method,
            time=hour << 11 | minute << 5 | second // 2,
            date=(year - 1980) << 9 | month << 5 | day,
            external_attr=external_attr,
            size=size,
            offset=self._position,
            zip64_header=zip64,
        )
        self._members.append(member)
        return member

    def _write(self, data: bytes) -> None:
        self._out.write(data)
        self._position += len(data)


def _local_header(member: _Member) -> bytes:
    size, packed, extra, version = member.size, member.packed_size, b"", _VERSION
    if member.zip64_header:
        extra = _LOCAL_ZIP64.pack(1, 16, size, packed)
        size = packed = 0xFFFFFFFF
        version = _ZIP64_VERSION
    header = _LOCAL.pack(
        b"PK\x03\x04",
        version,
        0,
        member.flags,
        member.method,
        member.time,
        member.date,
        member.crc,
        packed,
        size,
        len(member.name),
        len(extra),
    )
    return header + member.name + extra


def _central_header(member: _Member) -> bytes:
    size, packed, offset = member.size, member.packed_size, member.offset
    wide: list[int] = []
    if size > ZIP64_LIMIT or packed > ZIP64_LIMIT:
        wide += [size, packed]
        size = packed = 0xFFFFFFFF
    if offset > ZIP64_LIMIT:
        wide.append(offset)
        offset = 0xFFFFFFFF
    extra = struct.pack(f"<HH{len(wide)}Q", 1, 8 * len(wide), *wide) if wide else b""
    version = _ZIP64_VERSION if wide else _VERSION
    header = _CENTRAL.pack(
        b"PK\x01\x02",
        version,
        _MADE_ON_UNIX,
        version,
        0,
        member.flags,
        member.method,
        member.time,
        member.date,
        member.crc,
        packed,
        size,
        len(member.name),
        len(extra),
        0,
        0,
        0,
        member.external_attr,
        offset,
    )
    return header + member.name + extra
