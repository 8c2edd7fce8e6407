"""Take a local copy apart and build it again with one thing wrong: hostile archives for tests."""

from __future__ import annotations

import hashlib
import json
import stat
import struct
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from server.model.records import EntryKind, ManifestEntry
from server.storage.local_copy.format import MANIFEST_NAME, ArchiveLimits, member_name

REGULAR = (stat.S_IFREG | 0o644) << 16
DIRECTORY = (stat.S_IFDIR | 0o755) << 16 | 0x10


@dataclass
class Member:
    name: str
    data: bytes
    external_attr: int | None = None  # None: a regular file or directory, as the name says
    compress_type: int = zipfile.ZIP_DEFLATED


@dataclass
class Parts:
    """A copy taken apart: tests corrupt one thing, then `build` zips it again."""

    manifest: dict[str, Any]
    members: list[Member]
    raw_manifest: bytes | None = None  # replaces the encoded manifest when set
    manifest_name: str = MANIFEST_NAME
    manifest_last: bool = False
    limits: ArchiveLimits = field(default_factory=ArchiveLimits)

    def entry(self, name: str) -> dict[str, Any]:
        """The manifest entry of member `name`."""
        return next(e for e in self.manifest["entries"] if member_name(_entry(e)) == name)

    def add_file(self, name: str, data: bytes, compress_type: int = zipfile.ZIP_DEFLATED) -> None:
        """Add a member and a matching, correct manifest entry."""
        source, path = name.split("/", 1)
        self.manifest["entries"].append(
            {
                "source": source,
                "path": path,
                "kind": "FILE",
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                "mode": 0o644,
                "mtime": None,
            }
        )
        self.members.append(Member(name, data, compress_type=compress_type))


def _entry(raw: dict[str, Any]) -> ManifestEntry:
    kind = EntryKind(raw["kind"])
    return ManifestEntry(raw["source"], raw["path"], kind, raw["size"], raw["sha256"])


def take_apart(path: Path) -> Parts:
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
        members = [Member(i.filename, archive.read(i), i.external_attr, i.compress_type) for i in infos[1:]]
        return Parts(json.loads(archive.read(infos[0])), members)


def build(parts: Parts, target: Path) -> Path:
    manifest = parts.raw_manifest
    if manifest is None:
        manifest = json.dumps(parts.manifest).encode()
    first = [Member(parts.manifest_name, manifest)]
    ordered = parts.members + first if parts.manifest_last else first + parts.members
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicates some tests want
        with zipfile.ZipFile(target, "w") as archive:
            for member in ordered:
                info = zipfile.ZipInfo(member.name, (2026, 1, 1, 0, 0, 0))
                usual = DIRECTORY if member.name.endswith("/") else REGULAR
                info.external_attr = member.external_attr or usual
                info.compress_type = member.compress_type
                archive.writestr(info, member.data)
    return target


# field: (offset in the local header or None, offset in the central record, struct format)
HEADER_FIELDS: dict[str, tuple[int | None, int, str]] = {
    "flags": (6, 8, "<H"),
    "size": (22, 24, "<I"),
    "offset": (None, 42, "<I"),
}


def patch_header(path: Path, name: str, field: str, value: int) -> None:
    """Overwrite one field of member `name` in both its local and central headers."""
    local_at, central_at, fmt = HEADER_FIELDS[field]
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        header = archive.getinfo(name).header_offset
    if local_at is not None:
        struct.pack_into(fmt, data, header + local_at, value)
    struct.pack_into(fmt, data, _central_record(data, name) + central_at, value)
    path.write_bytes(bytes(data))


def _central_record(data: bytearray, name: str) -> int:
    encoded = name.encode()
    for at in _find_all(data, b"PK\x01\x02"):
        length = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46 : at + 46 + length] == encoded:
            return at
    raise AssertionError(f"no central record for {name!r}")


def _find_all(data: bytearray, needle: bytes) -> Iterator[int]:
    at = data.find(needle)
    while at >= 0:
        yield at
        at = data.find(needle, at + 1)
