"""Deflate on every core: a member is cut into chunks that are compressed at once, pigz style.

Each chunk is compressed on its own, primed with the 32 KiB before it (the window a
decompressor already holds) and ended with a sync flush, so the chunks joined in order are
one valid raw deflate stream, the same that a single compressor would make give or take a
few bytes per chunk. zlib releases the GIL while it works, so threads use every core.

The compressor and the CRC-32 are zlib-ng's: the same deflate format and, at the same level,
sizes within a percent of zlib's, in about half the CPU time on binary data (the export is
CPU-bound); its CRC-32 (carry-less multiply) runs at about five times zlib's speed here.
"""

from __future__ import annotations

import os
from typing import BinaryIO

from zlib_ng import zlib_ng as zlib

CHUNK_SIZE = 1024 * 1024
WINDOW = 32 * 1024  # deflate's back-reference window: all a chunk may refer to
LEVEL = 6  # zlib's default, the level `zip -6` uses: sizes stay comparable
WORKERS = max(1, os.cpu_count() or 1)

crc32 = zlib.crc32
crc32_combine = zlib.crc32_combine


def compress_chunk(raw: bytes, *, window: bytes = b"", last: bool, level: int = LEVEL) -> bytes:
    """Raw deflate data for `raw`, continuing a stream whose previous bytes end in `window`."""
    if last and not window:
        return zlib.compress(raw, level, -15)  # one call: a small member pays for one GIL hand-off
    if window and level:
        compressor = zlib.compressobj(level, zlib.DEFLATED, -15, zdict=window)
    else:
        compressor = zlib.compressobj(level, zlib.DEFLATED, -15)
    return compressor.compress(raw) + compressor.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)


def pack_chunk(raw: bytes, *, window: bytes, last: bool) -> tuple[bytes, int]:
    """compress_chunk's deflate data for `raw`, with the CRC-32 of `raw` (both on one worker)."""
    return compress_chunk(raw, window=window, last=last), crc32(raw)


def next_window(window: bytes, raw: bytes) -> bytes:
    """The last 32 KiB of the stream once `raw` follows `window`."""
    return raw[-WINDOW:] if len(raw) >= WINDOW else (window + raw)[-WINDOW:]


class RatioGuard:
    """Keeps one member under the import's ratio limit: a chunk that would push the member
    past it is written as a stored deflate block instead (a ratio of about one)."""

    def __init__(self, max_ratio: float | None) -> None:
        self._max_ratio = max_ratio
        self._raw = 0
        self._packed = 0

    def check(self, raw: bytes, packed: bytes, *, last: bool) -> bytes:
        """`packed`, or `raw` in stored blocks if `packed` would make the member too dense."""
        self._raw += len(raw)
        if self._max_ratio is not None and self._raw > (self._packed + len(packed)) * self._max_ratio:
            packed = compress_chunk(raw, last=last, level=0)
        self._packed += len(packed)
        return packed


def read_up_to(stream: BinaryIO, limit: int) -> bytes:
    """Up to `limit` bytes, fewer only at the end of the stream (raw reads may come short)."""
    parts: list[bytes] = []
    while limit > 0 and (part := stream.read(limit)):
        parts.append(part)
        limit -= len(part)
    return b"".join(parts)
