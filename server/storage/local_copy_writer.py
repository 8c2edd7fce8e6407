"""Writing a local copy: a ZIP built in a hidden temporary file, then renamed into place.

A reader of the folder sees either no copy or a whole one: the ZIP is written to
`.<name>.<random>.partial` beside the target, flushed to disk, renamed over the target, and
the folder itself is flushed so the rename survives a crash.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from server.domain.models import EntryKind, ManifestEntry, RestorePoint
from server.storage.local_copy_manifest import (
    MANIFEST_NAME,
    ArchiveLimits,
    ContentMismatch,
    CopyCancelled,
    KiB,
    encode_manifest,
    entries_problem,
    entry_problem,
    limits_problem,
    member_name,
)

CHUNK_SIZE = 1024 * 1024
SAMPLE_SIZE = 64 * KiB
_WORTH_COMPRESSING = 0.9  # deflate must save at least 10% of the sample
_RATIO_MARGIN = 0.9  # keep clear of the reader's ratio limit
_MSDOS_DIRECTORY = 0x10
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_ZIP_END_OF_TIME = (2107, 12, 31, 23, 59, 58)

OpenBlob = Callable[[str], BinaryIO]
Progress = Callable[[int], None]
ShouldStop = Callable[[], bool]


def write_local_copy(
    target: Path,
    *,
    restore_point: RestorePoint,
    entries: Sequence[ManifestEntry],
    open_blob: OpenBlob,
    on_bytes: Progress | None = None,
    should_stop: ShouldStop | None = None,
    limits: ArchiveLimits = ArchiveLimits(),
) -> int:
    """Atomically write a local copy to `target`; returns its size in bytes.

    Raises ValueError (before touching the folder) if the entries break the format's rules or
    `limits`, CopyCancelled if `should_stop()` turns true, ContentMismatch if a blob's bytes
    differ from its entry. On any failure the target is untouched and no temp file remains.
    """
    entries = list(entries)
    manifest = encode_manifest(restore_point, entries)
    _check_writable(entries, manifest, limits)
    # A leading dot hides the partial file from folder listings.
    fd, temp_name = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=".partial"
    )
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            writer = _Writer(out, open_blob, on_bytes, should_stop, limits)
            writer.write(manifest, entries, restore_point.created_at)
            out.flush()
            os.fsync(out.fileno())
            size = os.fstat(out.fileno()).st_size
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _fsync_folder(target.parent)
    return size


def _check_writable(entries: list[ManifestEntry], manifest: bytes, limits: ArchiveLimits) -> None:
    # Refuse to write what import would refuse: a copy nobody can restore is worse than none.
    problem = next(
        (f"entry {member_name(e)!r} {p}" for e in entries if (p := entry_problem(e))), None
    ) or entries_problem(entries) or limits_problem(entries, limits)
    if problem is None and len(manifest) > limits.max_manifest_bytes:
        problem = (
            f"has a manifest of {len(manifest)} bytes, more than {limits.max_manifest_bytes}"
        )
    if problem:
        raise ValueError(f"cannot write a local copy: the restore point {problem}")


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _Writer:
    """Writes the members of one copy, reporting progress and honouring cancellation."""

    def __init__(
        self,
        out: BinaryIO,
        open_blob: OpenBlob,
        on_bytes: Progress | None,
        should_stop: ShouldStop | None,
        limits: ArchiveLimits,
    ) -> None:
        self._out = out
        self._open_blob = open_blob
        self._on_bytes = on_bytes
        self._should_stop = should_stop
        self._limits = limits

    def write(self, manifest: bytes, entries: list[ManifestEntry], created_at: datetime) -> None:
        """Write manifest.json first, then one member per entry in manifest order."""
        with zipfile.ZipFile(self._out, "w", allowZip64=True) as archive:
            info = zipfile.ZipInfo(MANIFEST_NAME, _zip_time(created_at))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            archive.writestr(info, manifest)
            for entry in entries:
                self._stop_if_asked()
                if entry.kind is EntryKind.DIRECTORY:
                    archive.writestr(_member_info(entry, created_at, zipfile.ZIP_STORED), b"")
                else:
                    self._write_content(archive, entry, created_at)

    def _write_content(
        self, archive: zipfile.ZipFile, entry: ManifestEntry, created_at: datetime
    ) -> None:
        assert entry.sha256 is not None  # checked by entry_problem
        info = _member_info(entry, created_at, self._compression(entry, entry.sha256))
        hasher = hashlib.sha256()
        written = 0
        with self._open_blob(entry.sha256) as blob, archive.open(info, "w") as member:
            while chunk := blob.read(CHUNK_SIZE):
                self._stop_if_asked()
                written += len(chunk)
                if written > entry.size:
                    break
                hasher.update(chunk)
                member.write(chunk)
                if self._on_bytes is not None:
                    self._on_bytes(len(chunk))
        if written > entry.size:
            detail = f"more than the {entry.size} bytes expected"
        elif written != entry.size:
            detail = f"{written} bytes, {entry.size} expected"
        elif hasher.hexdigest() != entry.sha256:
            detail = "other bytes of the same size"
        else:
            return
        raise ContentMismatch(
            f"blob {entry.sha256} for {member_name(entry)!r} does not match its entry: {detail}"
        )

    def _compression(self, entry: ManifestEntry, digest: str) -> int:
        """DEFLATED if it saves space and stays under the reader's ratio limit, else STORED."""
        if entry.size == 0:
            return zipfile.ZIP_STORED
        with self._open_blob(digest) as blob:
            sample = blob.read(SAMPLE_SIZE)
        # Already-compressed content (media, archives) gains nothing from a second pass.
        if len(zlib.compress(sample)) > len(sample) * _WORTH_COMPRESSING:
            return zipfile.ZIP_STORED
        if entry.size <= self._limits.ratio_floor:
            return zipfile.ZIP_DEFLATED
        # A sample cannot bound the ratio of the rest (a header then zeros), so measure it
        # exactly with the settings zipfile uses; import would refuse a member over the limit.
        deflated = self._deflated_size(digest)
        if entry.size > deflated * self._limits.max_ratio * _RATIO_MARGIN:
            return zipfile.ZIP_STORED
        return zipfile.ZIP_DEFLATED

    def _deflated_size(self, digest: str) -> int:
        compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
        size = 0
        with self._open_blob(digest) as blob:
            while chunk := blob.read(CHUNK_SIZE):
                self._stop_if_asked()
                size += len(compressor.compress(chunk))
        return size + len(compressor.flush())

    def _stop_if_asked(self) -> None:
        if self._should_stop is not None and self._should_stop():
            raise CopyCancelled("writing the local copy was cancelled")


def _member_info(entry: ManifestEntry, created_at: datetime, compress_type: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(member_name(entry), _zip_time(entry.mtime or created_at))
    info.compress_type = compress_type
    permissions = entry.mode & 0o777
    if entry.kind is EntryKind.DIRECTORY:
        info.external_attr = ((stat.S_IFDIR | permissions) << 16) | _MSDOS_DIRECTORY
    elif entry.kind is EntryKind.SYMLINK:
        # The link target as a plain text file: unzip must never create a link from a copy.
        info.external_attr = (stat.S_IFREG | 0o644) << 16
    else:
        info.external_attr = (stat.S_IFREG | permissions) << 16
    # zipfile picks ZIP64 local headers from the expected size, before any byte is written.
    info.file_size = entry.size
    return info


def _zip_time(when: datetime) -> tuple[int, int, int, int, int, int]:
    """ZIP's local-time stamp, taken in UTC and clamped to the years ZIP can represent."""
    if when.tzinfo is not None:
        when = when.astimezone(UTC)
    stamp = (when.year, when.month, when.day, when.hour, when.minute, when.second)
    return max(_ZIP_EPOCH, min(stamp, _ZIP_END_OF_TIME))
