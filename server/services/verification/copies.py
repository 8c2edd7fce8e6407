"""Local copies read back whole (verifyBackups with `copies`), and read as the source of a
repair: blocking, for a worker thread."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from server.model.errors import InvalidArchive
from server.model.manifests import manifest_checksum
from server.model.records import EntryKind, LocalCopy, ManifestEntry
from server.model.verification import VerificationState
from server.services.local_copies.encryption import CopyEncryption
from server.storage.blobs.content_store import ContentStore
from server.storage.encryption import Cancelled, EncryptedDamaged, KeyMissing
from server.storage.local_copy.folder import LocalCopyFolder
from server.storage.local_copy.format import CopyCancelled, open_local_copy, read_manifest, verify_local_copy

CHUNK = 1024 * 1024
# `<date>-<time>_<label>_<short id>[-N].zip[.age]`: the name an export gives (folder.new_name).
_EXPORT_NAME = re.compile(r".*_(?P<short>[0-9A-Za-z]{8})(?:-\d+)?\.zip(?:\.age)?", re.DOTALL)


class VerifyStopped(Exception):
    """Reading stopped because the operation was cancelled."""


@dataclass(frozen=True, slots=True)
class CopyFinding:
    state: VerificationState | None  # None: not verified this time (`note` says why)
    problems: tuple[str, ...] = ()
    note: str = ""


def verify_copy(
    copy: LocalCopy,
    folder: LocalCopyFolder,
    encryption: CopyEncryption,
    on_bytes: Callable[[int], None],
    should_stop: Callable[[], bool],
) -> CopyFinding:
    """Read a local copy whole (see verify_file)."""
    return verify_file(folder.path_of(copy), copy.file_name, copy.encrypted, folder, encryption, on_bytes, should_stop)


def verify_file(
    path: Path,
    file_name: str,
    encrypted: bool,
    folder: LocalCopyFolder,
    encryption: CopyEncryption,
    on_bytes: Callable[[int], None],
    should_stop: Callable[[], bool],
) -> CopyFinding:
    """Read a copy whole: its ZIP structure, every member's CRC, size and SHA-256 against its
    manifest, the manifest's own checksum (an encrypted copy decrypted to a temporary file
    first, every age chunk authenticated); and that it holds the restore point its name says."""
    plain: Path | None = None
    try:
        if encrypted:
            try:
                plain = encryption.decrypt_to_temp(path, on_bytes, should_stop)
            except KeyMissing as error:
                return CopyFinding(None, note=f"it is encrypted to no key this server holds ({error})")
            except EncryptedDamaged as error:
                return CopyFinding(VerificationState.DAMAGED, (f"{file_name}: {error.message}",))
        manifest = verify_local_copy(plain or path, folder.limits, on_bytes, should_stop)
    except FileNotFoundError:
        return CopyFinding(VerificationState.MISSING, (f"{file_name}: the file is gone",))
    except InvalidArchive as error:
        return CopyFinding(VerificationState.DAMAGED, (f"{file_name}: {error.message}",))
    except (CopyCancelled, Cancelled):
        raise VerifyStopped(file_name) from None
    finally:
        if plain is not None:
            plain.unlink(missing_ok=True)
    if manifest_checksum(manifest.entries) != manifest.restore_point["checksum"]:
        return CopyFinding(
            VerificationState.DAMAGED, (f"{file_name}: the manifest's checksum does not match its entries",)
        )
    held = str(manifest.restore_point["id"])
    named = _EXPORT_NAME.fullmatch(file_name)
    if named is not None and not held.endswith(named["short"]):
        return CopyFinding(
            VerificationState.DAMAGED,
            (f"{file_name}: the file holds restore point {held}, not the one its name says (…{named['short']})",),
        )
    return CopyFinding(VerificationState.OK)


def repair_sources(
    folder: LocalCopyFolder, copies: list[LocalCopy], wanted: set[str]
) -> dict[str, list[tuple[LocalCopy, ManifestEntry]]]:
    """For each wanted SHA-256, the plain local copies that list an item with it (their
    manifests only are read; a copy that cannot be read is no source)."""
    found: dict[str, list[tuple[LocalCopy, ManifestEntry]]] = {}
    for copy in copies:
        if copy.encrypted or copy.problem is not None:
            continue
        try:
            manifest = read_manifest(folder.path_of(copy), folder.limits)
        except (InvalidArchive, OSError):
            continue
        for entry in manifest.entries:
            if entry.kind is not EntryKind.DIRECTORY and entry.sha256 in wanted:
                found.setdefault(entry.sha256, []).append((copy, entry))
    return found


def put_back_from(store: ContentStore, path: Path, folder: LocalCopyFolder, entry: ManifestEntry) -> str:
    """Write a blob from a plain copy's member into a temporary file of the store, checked
    against the member's SHA-256 as it is read and again as it is written; nothing is kept on a
    mismatch (InvalidArchive or DigestMismatch). Returns the temporary file (`store.place_back`)."""
    assert entry.sha256 is not None
    with open_local_copy(path, folder.limits) as reader, reader.open_member(entry) as stream:
        return store.put_back(entry.sha256, iter(lambda: stream.read(CHUNK), b""))


def entries_wanted(path: Path, folder: LocalCopyFolder, wanted: set[str]) -> list[ManifestEntry]:
    """The entries of a plain copy (a temporary one: decrypted, downloaded) holding a wanted
    SHA-256, one per SHA-256; none when it cannot be read."""
    try:
        manifest = read_manifest(path, folder.limits)
    except (InvalidArchive, OSError):
        return []
    found: dict[str, ManifestEntry] = {}
    for entry in manifest.entries:
        if entry.kind is not EntryKind.DIRECTORY and entry.sha256 in wanted:
            found.setdefault(entry.sha256, entry)
    return list(found.values())
