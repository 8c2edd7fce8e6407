"""Reading a local copy: structural checks, the manifest, and content checked as it is read.

Nothing in an archive is trusted. Opening a copy checks the ZIP structure and the manifest
without reading content (cheap enough to list a folder); `verify` then reads every member,
and every member stream checks size and SHA-256 again as the importer consumes it, so a file
changed between verify and import is still caught.
"""

from __future__ import annotations

import hashlib
import io
import stat
import struct
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO, BinaryIO

from server.model.errors import InvalidArchive
from server.model.records import EntryKind, ManifestEntry
from server.storage.local_copy.manifest import (
    MANIFEST_NAME,
    ArchiveLimits,
    CopyCancelled,
    LocalCopyManifest,
    decode_manifest,
    path_problem,
    source_problem,
)

CHUNK_SIZE = 1024 * 1024
_ENCRYPTED = 0x1
_UTF8_NAME = 0x800
_LOCAL_HEADER_SIZE = 30
# Errors the stdlib raises on damaged or unsupported archives (UnicodeDecodeError is a ValueError).
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    NotImplementedError,
    ValueError,
    struct.error,
    EOFError,
    zlib.error,
)

Key = tuple[str, str]  # (source, path)


class LocalCopyReader:
    """An open copy whose structure and manifest have been checked; a context manager."""

    def __init__(self, path: Path, limits: ArchiveLimits = ArchiveLimits()) -> None:
        self.path = path
        self.limits = limits
        self._file = path.open("rb")
        try:
            _check_directory_size(self._file, limits)
            self._zip = _open_zip(self._file)
            members = _check_members(self._zip, limits)
            self.manifest = _read_manifest(self._zip, limits)
            self._members = _match(self.manifest, members)
        except BaseException:
            self._file.close()
            raise

    def open_member(self, entry: ManifestEntry) -> BinaryIO:
        """A stream of the entry's content; at its end it raises InvalidArchive on a mismatch.

        The stream stops at `entry.size` and checks `entry.sha256` when read to the end, so
        content changed since `verify` still cannot slip through. Read it to the end.
        """
        info = self._members.get((entry.source, entry.path))
        if info is None:
            raise KeyError(f"{entry.source}/{entry.path} is not an entry of {self.path.name}")
        try:
            raw = self._zip.open(info)
        except _ZIP_ERRORS as exc:
            raise InvalidArchive(f"member {info.orig_filename!r} cannot be read: {exc}") from None
        return io.BufferedReader(_CheckedMember(raw, info.orig_filename, entry), CHUNK_SIZE)

    def verify(
        self,
        on_bytes: Callable[[int], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> None:
        """Read every member, checking its size and SHA-256 against the manifest."""
        for entry in self.manifest.entries:
            with self.open_member(entry) as stream:
                while chunk := stream.read(CHUNK_SIZE):
                    if should_stop is not None and should_stop():
                        raise CopyCancelled("verification cancelled")
                    if on_bytes is not None:
                        on_bytes(len(chunk))

    def close(self) -> None:
        """Close the underlying file."""
        self._zip.close()
        self._file.close()

    def __enter__(self) -> LocalCopyReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open_local_copy(path: Path, limits: ArchiveLimits = ArchiveLimits()) -> LocalCopyReader:
    """Open a copy for import: checks structure and manifest; raises InvalidArchive."""
    return LocalCopyReader(path, limits)


def read_manifest(path: Path, limits: ArchiveLimits = ArchiveLimits()) -> LocalCopyManifest:
    """Check a copy's structure and manifest without reading content (for listing a folder).

    Raises InvalidArchive for a bad copy, OSError if the file cannot be opened at all.
    """
    with LocalCopyReader(path, limits) as copy:
        return copy.manifest


def verify_local_copy(
    path: Path,
    limits: ArchiveLimits = ArchiveLimits(),
    on_bytes: Callable[[int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> LocalCopyManifest:
    """Fully validate a copy, reading every member; raises InvalidArchive naming the problem."""
    with LocalCopyReader(path, limits) as copy:
        copy.verify(on_bytes=on_bytes, should_stop=should_stop)
        return copy.manifest


# ---- the ZIP structure ---------------------------------------------------------------------


def _check_directory_size(file: IO[bytes], limits: ArchiveLimits) -> None:
    # zipfile reads the whole central directory into memory before we could count entries,
    # so check the end record's counts first. _EndRecData is private but stable since 2.x.
    try:
        end = zipfile._EndRecData(file)  # type: ignore[attr-defined]
    except (OSError, struct.error):
        end = None
    if not end:
        raise InvalidArchive("not a ZIP file, or a truncated one (no end of central directory)")
    count = end[zipfile._ECD_ENTRIES_TOTAL]  # type: ignore[attr-defined]
    size = end[zipfile._ECD_SIZE]  # type: ignore[attr-defined]
    _check_member_count(count, limits)
    if size > limits.max_directory_bytes:
        raise InvalidArchive(
            f"the archive's central directory is {size} bytes, more than the limit of {limits.max_directory_bytes}"
        )


def _check_member_count(count: int, limits: ArchiveLimits) -> None:
    if count > limits.max_entries + 1:  # + 1: manifest.json
        raise InvalidArchive(f"the archive has {count} members, more than the limit of {limits.max_entries}")


def _open_zip(file: IO[bytes]) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(file)
    except _ZIP_ERRORS as exc:
        raise InvalidArchive(f"not a readable ZIP file: {exc}") from None


def _check_members(archive: zipfile.ZipFile, limits: ArchiveLimits) -> dict[Key, zipfile.ZipInfo]:
    infos = archive.infolist()
    if not infos:
        raise InvalidArchive("the archive is empty: no manifest.json")
    _check_member_count(len(infos), limits)
    _check_layout(archive, infos)
    members: dict[Key, zipfile.ZipInfo] = {}
    names: set[str] = set()
    total = 0
    for info in infos:
        name = info.orig_filename
        if name in names:
            raise InvalidArchive(f"duplicate member {name!r}")
        names.add(name)
        _check_attributes(info, limits)
        total += info.file_size
        if total > limits.max_total_size:
            raise InvalidArchive(
                f"the members add up to more than the total size limit of {limits.max_total_size} bytes"
            )
        if info is infos[0]:
            continue  # manifest.json, checked when read
        key = _member_key(name)
        if key in members:
            raise InvalidArchive(f"member {name!r} duplicates {members[key].orig_filename!r}")
        members[key] = info
    return members


def _check_layout(archive: zipfile.ZipFile, infos: list[zipfile.ZipInfo]) -> None:
    """manifest.json comes first, and no member's data overlaps another's (a zip bomb trick)."""
    if infos[0].orig_filename != MANIFEST_NAME:
        listed = any(info.orig_filename == MANIFEST_NAME for info in infos)
        raise InvalidArchive("manifest.json is not the first member" if listed else "no manifest.json in the archive")
    ordered = sorted(infos, key=lambda info: info.header_offset)
    ends = [info.header_offset for info in ordered[1:]] + [archive.start_dir]
    for info, limit in zip(ordered, ends, strict=True):
        # A lower bound of the member's extent: local header, name and compressed data.
        end = info.header_offset + _LOCAL_HEADER_SIZE + _raw_name_length(info) + info.compress_size
        if end > limit:
            raise InvalidArchive(f"member {info.orig_filename!r} overlaps the next member or the central directory")
    if ordered[0] is not infos[0]:
        raise InvalidArchive("manifest.json is not the first member")


def _raw_name_length(info: zipfile.ZipInfo) -> int:
    encoding = "utf-8" if info.flag_bits & _UTF8_NAME else "cp437"
    try:
        return len(info.orig_filename.encode(encoding))
    except UnicodeEncodeError:
        return 0


def _check_attributes(info: zipfile.ZipInfo, limits: ArchiveLimits) -> None:
    name = info.orig_filename
    if info.flag_bits & _ENCRYPTED:
        raise InvalidArchive(f"member {name!r} is encrypted")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise InvalidArchive(
            f"member {name!r} uses compression method {info.compress_type}; only STORED (0) and DEFLATED (8) are read"
        )
    file_type = stat.S_IFMT(info.external_attr >> 16)
    if file_type == stat.S_IFLNK:
        raise InvalidArchive(f"member {name!r} is a symbolic link")
    if file_type not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise InvalidArchive(f"member {name!r} is a special file (file type {file_type:#o})")
    if (file_type == stat.S_IFDIR) != name.endswith("/") and file_type != 0:
        raise InvalidArchive(f"member {name!r} has a file type that does not match its name")
    if info.file_size > limits.max_entry_size:
        raise InvalidArchive(
            f"member {name!r} declares {info.file_size} bytes, more than the limit of {limits.max_entry_size} per entry"
        )
    ratio = info.file_size / max(info.compress_size, 1)
    if info.file_size > limits.ratio_floor and ratio > limits.max_ratio:
        raise InvalidArchive(
            f"member {name!r} would expand {ratio:.0f} times (limit {limits.max_ratio:.0f}): refused as a zip bomb"
        )


def _member_key(name: str) -> Key:
    """(source, path) of a content member; raises InvalidArchive for an unsafe name."""
    relative = name[:-1] if name.endswith("/") else name
    problem = path_problem(relative)
    if problem:
        raise InvalidArchive(f"member {name!r} {problem}")
    source, _, path = relative.partition("/")
    if not path:
        raise InvalidArchive(f"member {name!r} does not name an item inside a source folder")
    problem = source_problem(source)
    if problem:
        raise InvalidArchive(f"member {name!r} {problem}")
    return source, path


# ---- the manifest and its members ----------------------------------------------------------


def _read_manifest(archive: zipfile.ZipFile, limits: ArchiveLimits) -> LocalCopyManifest:
    info = archive.infolist()[0]
    if info.is_dir():
        raise InvalidArchive("manifest.json is a directory")
    if info.file_size > limits.max_manifest_bytes:
        raise InvalidArchive(
            f"manifest.json is {info.file_size} bytes, more than the limit of {limits.max_manifest_bytes}"
        )
    try:
        with archive.open(info) as stream:
            data = stream.read(limits.max_manifest_bytes + 1)
    except _ZIP_ERRORS as exc:
        raise InvalidArchive(f"manifest.json cannot be read: {exc}") from None
    if len(data) > limits.max_manifest_bytes:
        raise InvalidArchive(f"manifest.json is more than the limit of {limits.max_manifest_bytes} bytes")
    return decode_manifest(data, limits)


def _match(manifest: LocalCopyManifest, members: dict[Key, zipfile.ZipInfo]) -> dict[Key, zipfile.ZipInfo]:
    """Pair every entry with its member; anything unpaired or inconsistent is refused."""
    unclaimed = dict(members)
    for entry in manifest.entries:
        label = f"{entry.source}/{entry.path}"
        info = unclaimed.pop((entry.source, entry.path), None)
        if info is None:
            raise InvalidArchive(f"manifest entry {label!r} has no member in the archive")
        name = info.orig_filename
        if name.endswith("/") != (entry.kind is EntryKind.DIRECTORY):
            raise InvalidArchive(f"member {name!r} does not match its manifest entry's kind {entry.kind}")
        if info.file_size != entry.size:
            raise InvalidArchive(f"member {name!r} is {info.file_size} bytes but its manifest entry says {entry.size}")
    if unclaimed:
        name = next(iter(unclaimed.values())).orig_filename
        raise InvalidArchive(f"member {name!r} is not listed in manifest.json")
    return members


class _CheckedMember(io.RawIOBase):
    """A member's bytes, stopped at the manifest's size and hash-checked at the end."""

    def __init__(self, raw: IO[bytes], name: str, entry: ManifestEntry) -> None:
        super().__init__()
        self._raw = raw
        self._name = name
        self._entry = entry
        self._hash = hashlib.sha256()
        self._count = 0
        self._finished = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._finished:
            return 0
        # Ask for one byte past the declared size so a member that runs long is noticed.
        want = min(len(buffer), self._entry.size - self._count + 1)
        chunk = self._read(want)
        if not chunk:
            self._finish()
            return 0
        self._count += len(chunk)
        if self._count > self._entry.size:
            raise InvalidArchive(
                f"member {self._name!r} holds more than the {self._entry.size} bytes its manifest entry says"
            )
        self._hash.update(chunk)
        buffer[: len(chunk)] = chunk
        return len(chunk)

    def _read(self, size: int) -> bytes:
        try:
            return self._raw.read(size)
        except _ZIP_ERRORS as exc:
            raise InvalidArchive(f"member {self._name!r} is damaged: {exc}") from None

    def _finish(self) -> None:
        self._finished = True
        if self._count != self._entry.size:
            raise InvalidArchive(
                f"member {self._name!r} holds {self._count} bytes but its manifest entry says {self._entry.size}"
            )
        if self._entry.sha256 is not None and self._hash.hexdigest() != self._entry.sha256:
            raise InvalidArchive(f"member {self._name!r} does not match its SHA-256 checksum in manifest.json")

    def close(self) -> None:
        self._raw.close()
        super().close()
