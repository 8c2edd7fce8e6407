"""The local copies folder as it is on disk: listing, ids, names, removal.

A copy's id is derived from its file name, so a file copied in by hand has an id at once and
keeps it across restarts. Manifests are read once per version of a file (name and
`fingerprint`) and cached, so listing a folder of large copies stays cheap.
"""

from __future__ import annotations

import base64
import binascii
import errno
import os
import re
import threading
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from server.model.errors import InvalidArchive, NotFound, quoted
from server.model.names import is_local_copy_id_form
from server.model.records import LocalCopy
from server.storage.durability import fsync_path
from server.storage.encryption import SUFFIX, EncryptedDamaged, KeyMissing, Keyring, is_encrypted_name
from server.storage.local_copy.format import ArchiveLimits, LocalCopyManifest, read_manifest
from server.storage.local_copy.manifest import MANIFEST_NAME, decode_manifest

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
ID_PREFIX = "lc_"
# A subfolder of the local copies folder for copies made only to be sent elsewhere (a
# schedule's copy to its locations): never listed, and emptied at start-up (a killed run's).
STAGING_FOLDER = ".staging"


class ManifestFacts(NamedTuple):
    """What a listing shows of a copy's manifest, read once per version of its file."""

    restore_point_id: str | None  # None when it cannot be read
    problem: str | None  # why it cannot be imported; None when it can
    server_name: str | None = None  # the server that wrote it; None: unknown, or made before names


def facts_of(manifest: LocalCopyManifest) -> ManifestFacts:
    return ManifestFacts(str(manifest.restore_point["id"]), None, manifest.server_name)


def copy_id(file_name: str) -> str:
    """The id of the copy stored under this file name."""
    return ID_PREFIX + base64.urlsafe_b64encode(file_name.encode()).decode().rstrip("=")


def file_name_of(local_copy_id: str) -> str | None:
    """The file name an id stands for, or None when the id is not one of ours."""
    # base64 decoding skips characters outside its alphabet (a trailing newline, say): only the
    # one spelling copy_id gives names the copy, so an id never has look-alikes.
    if not is_local_copy_id_form(local_copy_id):
        return None
    encoded = local_copy_id[len(ID_PREFIX) :]
    try:
        name = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    if not is_listable(name) or copy_id(name) != local_copy_id:
        return None
    return name


def is_listable(name: str) -> bool:
    """Plain, visible file names only: no paths, no hidden or temporary files."""
    return bool(name) and "/" not in name and "\\" not in name and "\0" not in name and not name.startswith(".")


def slug(text: str, limit: int = 40, empty: str = "restore-point") -> str:
    """A file-name-safe version of a label: ASCII letters, digits, dot, dash, underscore."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return _SAFE.sub("-", ascii_text).strip("-._")[:limit].rstrip("-._") or empty


def fingerprint(stat: os.stat_result) -> str:
    """One version of a file: inode, size, mtime and ctime. The ctime is what a rewrite
    cannot put back (`cp -p`, `rsync -t` and `tar` restore the mtime, and a file rewritten
    in place, or a new one on a freed inode, keeps the inode and the size)."""
    return f"{stat.st_ino:x}-{stat.st_size:x}-{stat.st_mtime_ns:x}-{stat.st_ctime_ns:x}"


class LocalCopyFolder:
    """Blocking file-system access to the folder; callers run it off the event loop."""

    def __init__(self, root: Path, limits: ArchiveLimits = ArchiveLimits(), keyring: Keyring | None = None) -> None:
        self.root = root
        self.limits = limits
        self.keyring = keyring
        self._manifests: dict[tuple[str, str], ManifestFacts] = {}
        self._lock = threading.Lock()
        root.mkdir(parents=True, exist_ok=True)

    def list(self) -> list[LocalCopy]:
        """Every visible file in the folder, newest first."""
        copies = []
        seen = set()
        with os.scandir(self.root) as entries:
            for entry in entries:
                if not is_listable(entry.name) or not entry.is_file(follow_symlinks=False):
                    continue
                copies.append(self._describe(entry.name, entry.stat(follow_symlinks=False)))
                seen.add(entry.name)
        with self._lock:  # forget versions of files that are gone
            for key in [k for k in self._manifests if k[0] not in seen]:
                del self._manifests[key]
        return sorted(copies, key=lambda c: (c.modified_at, c.file_name), reverse=True)

    def get(self, local_copy_id: str) -> LocalCopy | None:
        name = file_name_of(local_copy_id)
        if name is None:
            return None
        try:
            stat = (self.root / name).stat(follow_symlinks=False)
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not _is_regular(stat):
            return None
        return self._describe(name, stat)

    def require(self, local_copy_id: str, field: str = "localCopyId") -> LocalCopy:
        copy = self.get(local_copy_id)
        if copy is None:
            raise NotFound(f"no local copy with id {quoted(local_copy_id)}", field=field)
        return copy

    def path_of(self, copy: LocalCopy) -> Path:
        return self.root / copy.file_name

    def manifest(self, copy: LocalCopy) -> LocalCopyManifest:
        """The copy's checked manifest; InvalidArchive when it has a problem."""
        return read_manifest(self.path_of(copy), self.limits)

    def new_name(
        self,
        created_at: datetime,
        label: str,
        point_id: str,
        *,
        encrypted: bool = False,
        server_name: str | None = None,
    ) -> str:
        """`<date>-<time>_<server>_<label>_<short id>.zip` (`.zip.age` encrypted), made unique in
        the folder; without a server name (a copy made before names) `<date>-<time>_<label>_<short id>`.
        Nothing reads these parts back (a copy's facts come from its manifest): any name imports."""
        short = point_id.removeprefix("rp_")[-8:]
        server = f"{slug(server_name, limit=32, empty='server')}_" if server_name else ""
        base = f"{created_at:%Y%m%d-%H%M%S}_{server}{slug(label)}_{short}"
        ending = ".zip" + (SUFFIX if encrypted else "")
        name = f"{base}{ending}"
        counter = 2
        while (self.root / name).exists():
            name = f"{base}-{counter}{ending}"
            counter += 1
        return name

    def place(self, temp: Path, name: str, before_naming: Callable[[Path, str], None] | None = None) -> str:
        """Give a finished temporary file in the folder its name, or `<name>-2.zip`, ... if that
        is taken: created exclusively (a hard link fails on an existing name), so two writers
        picking one name at once never replace each other's copy. Returns the name used.
        `before_naming(temp, name)` runs first (to record durably what is about to be named)."""
        if before_naming is not None:
            before_naming(temp, name)
        stem, ending = split_copy_name(name)
        candidate, counter = name, 2
        while True:
            try:
                _link_exclusively(temp, self.root / candidate)
                break
            except FileExistsError:
                candidate = f"{stem}-{counter}{ending}"
                counter += 1
        temp.unlink(missing_ok=True)  # gone already where the fallback renamed it
        fsync_path(self.root)
        return candidate

    def find_placed(self, name: str, inode: int, size: int) -> str | None:
        """The name `place` gave the file with this inode and size when asked for `name`
        (`name` or a `-N` variant of it), or None if no such file is here."""
        stem, ending = split_copy_name(name)
        variant = re.compile(rf"{re.escape(stem)}(-[0-9]+)?{re.escape(ending)}", re.DOTALL)
        with os.scandir(self.root) as entries:
            for entry in entries:
                if entry.inode() != inode or not variant.fullmatch(entry.name) or not is_listable(entry.name):
                    continue
                info = entry.stat(follow_symlinks=False)
                if _is_regular(info) and info.st_size == size:
                    return entry.name
        return None

    def placed(self, name: str, stat: os.stat_result, point_id: str, server_name: str | None = None) -> LocalCopy:
        """A copy just placed under `name`, already checked, described without reading it again
        (it may be deleted by then: what was placed is still described)."""
        with self._lock:
            self._manifests[self._cache_key(name, fingerprint(stat))] = ManifestFacts(point_id, None, server_name)
        return self._describe(name, stat)

    def delete(self, copy: LocalCopy) -> None:
        try:
            (self.root / copy.file_name).unlink()
        except FileNotFoundError:
            raise NotFound(f"local copy {copy.file_name!r} is already gone", field="id") from None

    def _describe(self, name: str, stat: os.stat_result) -> LocalCopy:
        mark = fingerprint(stat)
        encrypted = is_encrypted_name(name)
        key = self._cache_key(name, mark)
        with self._lock:
            known = self._manifests.get(key)
        if known is None:
            known = self._read(name)
            with self._lock:
                self._manifests[key] = known
        point_id, problem, server_name = known
        return LocalCopy(
            id=copy_id(name),
            file_name=name,
            path=str(self.root / name),
            size=stat.st_size,
            modified_at=datetime.fromtimestamp(stat.st_mtime, UTC),
            restore_point_id=point_id,
            problem=problem,
            fingerprint=mark,
            encrypted=encrypted,
            server_name=server_name,
        )

    def _cache_key(self, name: str, mark: str) -> tuple[str, str]:
        # An encrypted copy is read again once a key is added (`backups key import`).
        if is_encrypted_name(name) and self.keyring is not None:
            return name, f"{mark}-{self.keyring.version()}"
        return name, mark

    def _read(self, name: str) -> ManifestFacts:
        if is_encrypted_name(name):
            return read_encrypted_id(self.root / name, self.keyring, self.limits)
        if not name.lower().endswith(".zip"):
            return ManifestFacts(None, "not a ZIP file (local copies end in .zip, encrypted ones in .zip.age)")
        try:
            manifest = read_manifest(self.root / name, self.limits)
        except InvalidArchive as error:
            return ManifestFacts(None, error.message)
        except OSError as error:
            return ManifestFacts(None, f"cannot be read: {error.strerror or error}")
        return facts_of(manifest)


def split_copy_name(name: str) -> tuple[str, str]:
    """(stem, ending): `a.zip.age` is ("a", ".zip.age"), `a.zip` is ("a", ".zip")."""
    for ending in (".zip" + SUFFIX, ".zip"):
        if name.lower().endswith(ending):
            return name[: -len(ending)], name[-len(ending) :]
    return name, ""


def read_encrypted_id(path: Path, keyring: Keyring | None, limits: ArchiveLimits) -> ManifestFacts:
    """(restore point id, problem, server name) of an encrypted copy, decrypting only its manifest."""
    if keyring is None:
        return ManifestFacts(None, "encrypted, and this server has no keys")
    try:
        member, data = keyring.peek_first_member(path, limits.max_manifest_bytes)
        if member != MANIFEST_NAME:
            return ManifestFacts(None, f"the first member is {member!r}, not {MANIFEST_NAME}")
        return facts_of(decode_manifest(data, limits))
    except KeyMissing as error:
        return ManifestFacts(None, error.message)
    except EncryptedDamaged as error:
        return ManifestFacts(None, error.message)
    except InvalidArchive as error:
        return ManifestFacts(None, error.message)
    except OSError as error:
        return ManifestFacts(None, f"cannot be read: {error.strerror or error}")


def _link_exclusively(temp: Path, target: Path) -> None:
    """Make `target` name the file `temp` names; FileExistsError if `target` exists."""
    try:
        os.link(temp, target, follow_symlinks=False)
    except FileExistsError:
        raise
    except OSError as error:
        if error.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK):
            raise
        # No hard links on this file system: claim the name with an empty file of our own
        # (O_EXCL), then rename over it, which replaces only what we made.
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))
        os.replace(temp, target)


def _is_regular(stat: os.stat_result) -> bool:
    import stat as stat_module

    return stat_module.S_ISREG(stat.st_mode)


def link_exclusively(temp: Path, target: Path) -> None:
    """Public name of the exclusive placement, for other folders of copies (folder locations)."""
    _link_exclusively(temp, target)
