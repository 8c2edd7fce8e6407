"""The local copies' encryption helpers (server/services/local_copies/encryption.py), which the
local copies' jobs and the locations' upload and fetch share: temporary files are hidden in
the folder, round-trip, and leave nothing behind when cancelled or refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from server.model.errors import InvalidArchive
from server.services.local_copies.encryption import CopyEncryption
from server.storage.durability import TEMP_NAME
from server.storage.encryption import Cancelled, Keyring
from server.storage.local_copy.folder import LocalCopyFolder


def encryption_in(tmp_path: Path) -> tuple[CopyEncryption, Path]:
    root = tmp_path / "local-copies"
    keyring = Keyring(tmp_path / "data")
    return CopyEncryption(LocalCopyFolder(root, keyring=keyring), keyring), root


def test_encrypt_then_decrypt_gives_the_plain_copy_back_in_hidden_temporary_files(tmp_path: Path) -> None:
    encryption, root = encryption_in(tmp_path)
    plain = tmp_path / "copy.zip"
    plain.write_bytes(os.urandom(300 * 1024))
    encrypted = encryption.encrypt_to_temp(plain)
    decrypted = encryption.decrypt_to_temp(encrypted)
    assert decrypted.read_bytes() == plain.read_bytes()
    assert encrypted.read_bytes() != plain.read_bytes()
    for temp in (encrypted, decrypted):
        assert temp.parent == root
        assert TEMP_NAME.fullmatch(temp.name), temp.name  # never listed as a local copy
    assert encryption.recipients_named() == [f"the server's identity {encryption.keyring.public()}"]


def test_a_cancelled_encryption_leaves_nothing_in_the_folder(tmp_path: Path) -> None:
    encryption, root = encryption_in(tmp_path)
    plain = tmp_path / "copy.zip"
    plain.write_bytes(os.urandom(300 * 1024))
    with pytest.raises(Cancelled):
        encryption.encrypt_to_temp(plain, should_stop=lambda: True)
    assert list(root.iterdir()) == []


def test_verify_copy_refuses_what_is_not_a_copy_and_leaves_no_plain_text(tmp_path: Path) -> None:
    encryption, root = encryption_in(tmp_path)
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip at all")
    with pytest.raises(InvalidArchive):
        encryption.verify_copy(junk, encrypted=False)
    sealed = encryption.encrypt_to_temp(junk)
    with pytest.raises(InvalidArchive):
        encryption.verify_copy(sealed, encrypted=True)  # decrypted to be checked, then removed
    assert [path.name for path in root.iterdir()] == [sealed.name]
