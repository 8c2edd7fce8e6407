"""A folder of a restore point as a ZIP, made as it is sent (stream-zip): no temporary file,
memory bounded by a piece of one member, ZIP64 by itself past ZIP's 4 GiB limits.

Member names are relative to the folder; folders are members of their own ("name/"), links
members holding their target with the link's mode bits (as Info-ZIP's `zip -y` writes them),
modes and modification times kept. Each member's bytes are checked against its SHA-256 as
they are read, and a damaged one stops the ZIP before its last piece (ContentDamaged): the
client then holds a ZIP with no central directory, which no tool opens as complete.
"""

from __future__ import annotations

import stat
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from stream_zip import ZIP_32, ZIP_AUTO, stream_zip

from server.model.records import EntryKind, ManifestEntry

PIECE = 1024 * 1024
LEVEL = 6  # zip's own default: most of the gain of 9 at a fraction of the time
# ZIP's DOS time starts in 1980 and stream-zip's Unix time field is 32-bit signed: a time
# outside both is written as the nearest one they hold.
EARLIEST = datetime(1980, 1, 1, tzinfo=UTC)
LATEST = datetime(2038, 1, 19, tzinfo=UTC)


def member_time(mtime: datetime | None, fallback: datetime) -> datetime:
    when = (mtime or fallback).astimezone(UTC)
    return min(max(when, EARLIEST), LATEST)


def zip_chunks(
    entries: Sequence[ManifestEntry],
    folder: str,
    read: Callable[[ManifestEntry], Iterator[bytes]],
    *,
    fallback_time: datetime,
) -> Iterator[bytes]:
    """Blocking: the ZIP of `entries` (everything under `folder`, "" for a whole source, a
    folder before what it holds), each file's bytes from `read`, checked as they come."""
    cut = len(folder) + 1 if folder else 0

    def members() -> Iterable[tuple[str, datetime, int, Any, Iterable[bytes]]]:
        for entry in entries:
            name = entry.path[cut:]
            when = member_time(entry.mtime, fallback_time)
            mode = stat.S_IMODE(entry.mode)
            if entry.kind is EntryKind.DIRECTORY:
                yield name + "/", when, stat.S_IFDIR | mode, ZIP_32, ()
            elif entry.kind is EntryKind.SYMLINK:
                yield name, when, stat.S_IFLNK | (mode or 0o777), ZIP_32, read(entry)
            else:
                yield name, when, stat.S_IFREG | mode, ZIP_AUTO(entry.size, level=LEVEL), read(entry)

    return iter(stream_zip(members(), chunk_size=PIECE))
