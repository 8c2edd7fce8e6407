"""A folder as a ZIP made as it is sent: names relative to the folder, folders and links as
members, modes and times kept (a time ZIP cannot hold written as the nearest it can)."""

from __future__ import annotations

import io
import stat
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from server.model.records import EntryKind, ManifestEntry
from server.services.items.folder_zip import EARLIEST, LATEST, member_time, zip_chunks

MADE = datetime(2024, 5, 6, 7, 8, 10, tzinfo=UTC)
CONTENT = {"top/a.txt": b"a" * 100_000, "top/sub/link": b"../a.txt"}


def entry(path: str, kind: EntryKind, mode: int, mtime: datetime | None = None) -> ManifestEntry:
    return ManifestEntry("site", path, kind, len(CONTENT.get(path, b"")), "0" * 64, mode, mtime)


def read(member: ManifestEntry) -> Iterator[bytes]:
    data = CONTENT[member.path]
    yield from (data[i : i + 4096] for i in range(0, len(data), 4096))


def test_members_relative_to_the_folder() -> None:
    entries = [
        entry("top/a.txt", EntryKind.FILE, 0o640, datetime(1970, 1, 2, tzinfo=UTC)),
        entry("top/sub", EntryKind.DIRECTORY, 0o750, MADE),
        entry("top/sub/link", EntryKind.SYMLINK, 0o777),
    ]
    data = b"".join(zip_chunks(entries, "top", read, fallback_time=MADE))
    archive = zipfile.ZipFile(io.BytesIO(data))
    info = {i.filename: i for i in archive.infolist()}
    assert list(info) == ["a.txt", "sub/", "sub/link"]
    assert archive.read("a.txt") == CONTENT["top/a.txt"] and archive.read("sub/link") == b"../a.txt"
    assert info["a.txt"].external_attr >> 16 == stat.S_IFREG | 0o640
    assert info["sub/"].external_attr >> 16 == stat.S_IFDIR | 0o750
    assert stat.S_ISLNK(info["sub/link"].external_attr >> 16)
    assert info["a.txt"].date_time == (1980, 1, 1, 0, 0, 0)  # before ZIP's time began
    assert info["sub/link"].date_time == (2024, 5, 6, 7, 8, 10)  # none kept: the restore point's


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (datetime(1960, 1, 1, tzinfo=UTC), EARLIEST),
        (datetime(2100, 1, 1, tzinfo=UTC), LATEST),
        (MADE, MADE),
        (None, MADE),
    ],
)
def test_member_times(when: datetime | None, expected: datetime) -> None:
    assert member_time(when, MADE) == expected
