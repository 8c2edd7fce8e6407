"""The encryption of local copies (age), in one place: a plain copy encrypted into the folder
or into a hidden temporary file, an encrypted one decrypted into a hidden temporary file, and a
copy read in full whether it is encrypted or not.

Used by the local copies' export, import and upload, and by the locations' upload (a plain
copy to an encrypting location) and fetch (a copy checked before it takes a name).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from server.model.errors import InvalidArchive
from server.model.manifests import manifest_checksum
from server.services.local_copies.naming import BeforeNaming
from server.storage.durability import TEMP_SUFFIX, atomic_write, temp_prefix
from server.storage.encryption import EncryptedDamaged, Keyring
from server.storage.local_copy.folder import LocalCopyFolder
from server.storage.local_copy.format import LocalCopyManifest, verify_local_copy


class CopyEncryption:
    """Encrypting, decrypting and checking the copies of one local copies folder, with the
    server's keyring (its identity and the recovery recipients), handed in by the composition
    root as it is to the folder."""

    def __init__(self, folder: LocalCopyFolder, keyring: Keyring) -> None:
        self._folder = folder
        self._keyring = keyring

    @property
    def keyring(self) -> Keyring:
        return self._keyring

    def recipients_named(self) -> list[str]:
        """Whom an encrypted copy is for, as a log line names them."""
        return [f"the server's identity {self.keyring.public()}", *(f"recovery {r}" for r in self.keyring.recovery)]

    def encrypt_into_folder(
        self,
        plain: Path,
        name: str,
        on_bytes: Callable[[int], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        before_naming: BeforeNaming | None = None,
    ) -> str:
        """Encrypt a plain copy into the folder as `name` (or a free variant); returns the name."""
        with atomic_write(self._folder.root / name) as pending:
            self.keyring.encrypt(plain, pending.file, on_bytes, should_stop)
            pending.sync()
            os.chmod(pending.temp, 0o600)
            placed = self._folder.place(pending.temp, name, before_naming)
            pending.placed_at(self._folder.root / placed)
        return placed

    def encrypt_to_temp(
        self,
        path: Path,
        on_bytes: Callable[[int], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> Path:
        """A plain copy encrypted, as a hidden temporary file in the folder that the caller
        removes (what is sent to an encrypting location). Raises Cancelled (nothing left)."""
        return self._to_temp(path, lambda out: self.keyring.encrypt(path, out, on_bytes, should_stop))

    def decrypt_to_temp(
        self,
        path: Path,
        on_bytes: Callable[[int], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> Path:
        """The plain ZIP of an encrypted copy, as a hidden temporary file in the folder that
        the caller removes. Raises KeyMissing, EncryptedDamaged or Cancelled (nothing left)."""
        return self._to_temp(path, lambda out: self.keyring.decrypt(path, out, on_bytes, should_stop))

    def _to_temp(self, path: Path, write: Callable[[BinaryIO], None]) -> Path:
        fd, temp_name = tempfile.mkstemp(dir=self._folder.root, prefix=temp_prefix(path.name), suffix=TEMP_SUFFIX)
        temp = Path(temp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                write(out)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return temp

    def verify_copy(self, path: Path, *, encrypted: bool) -> LocalCopyManifest:
        """Read a copy in full (an encrypted one decrypted into a temporary file first); raises
        InvalidArchive naming the problem, KeyMissing for a copy this server cannot decrypt."""
        if not encrypted:
            manifest = verify_local_copy(path, self._folder.limits)
        else:
            try:
                plain = self.decrypt_to_temp(path)
            except EncryptedDamaged as error:
                raise InvalidArchive(error.message) from None
            try:
                manifest = verify_local_copy(plain, self._folder.limits)
            finally:
                plain.unlink(missing_ok=True)
        if manifest_checksum(manifest.entries) != manifest.restore_point["checksum"]:
            raise InvalidArchive("the manifest's checksum does not match its entries")
        return manifest
