"""Reading items out of a local copy without importing it (server/storage/local_copy/contents.py):
the entries and chosen members of a plain and of an encrypted copy, each checked against the
manifest, and a damaged or unreadable copy refused rather than read wrong."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from server.model.errors import InvalidArchive
from server.model.records import EntryKind, ManifestEntry
from server.storage.encryption import EncryptedDamaged, KeyMissing, Keyring
from server.storage.local_copy.contents import MemberDamaged, copy_entries, read_members
from server.storage.local_copy.manifest import member_name
from tests.unit.test_local_copy_format import Sample, write_sample


@pytest.fixture(params=["plain", "encrypted"])
def copy(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Sample, Keyring]]:
    sample = write_sample(tmp_path)
    keyring = Keyring(tmp_path / "data")
    if request.param == "encrypted":
        sealed = sample.path.with_name("copy.zip.age")
        with sealed.open("wb") as out:
            keyring.encrypt(sample.path, out)
        sample.path.unlink()
        sample.path = sealed
    yield sample, keyring


def read_all(path: Path, keyring: Keyring | None, wanted: list[ManifestEntry]) -> dict[str, bytes]:
    found = {}
    with read_members(path, keyring, wanted) as members:
        for entry, chunks in members:
            found[member_name(entry)] = b"".join(chunks)
    return found


def test_the_entries_are_the_manifest_s(copy: tuple[Sample, Keyring]) -> None:
    sample, keyring = copy
    assert copy_entries(sample.path, keyring) == sample.entries


def test_chosen_members_come_back_whole_in_the_copy_s_order(copy: tuple[Sample, Keyring]) -> None:
    sample, keyring = copy
    files = [entry for entry in sample.entries if entry.kind is not EntryKind.DIRECTORY]
    chosen = [files[-1], files[0]]  # asked out of order: given in the copy's
    found = read_all(sample.path, keyring, chosen)
    assert found == {member_name(entry): sample.content[member_name(entry)] for entry in chosen}
    assert list(found) == [member_name(files[0]), member_name(files[-1])]


def test_one_member_early_in_the_copy_stops_decrypting_there(copy: tuple[Sample, Keyring]) -> None:
    sample, keyring = copy
    first = next(entry for entry in sample.entries if entry.kind is EntryKind.FILE)
    assert read_all(sample.path, keyring, [first]) == {member_name(first): sample.content[member_name(first)]}


def test_content_that_differs_from_the_manifest_is_refused_at_its_end(copy: tuple[Sample, Keyring]) -> None:
    sample, keyring = copy
    entry = next(entry for entry in sample.entries if entry.path == "random.bin")
    lying = ManifestEntry(entry.source, entry.path, entry.kind, entry.size, "0" * 64, entry.mode, entry.mtime)
    with pytest.raises(MemberDamaged, match="SHA-256"):
        read_all(sample.path, keyring, [lying])


def test_an_entry_the_copy_does_not_hold_is_refused(copy: tuple[Sample, Keyring]) -> None:
    sample, keyring = copy
    ghost = ManifestEntry("directory", "ghost.txt", EntryKind.FILE, 1, "0" * 64, 0o644, None)
    with pytest.raises(InvalidArchive, match="ghost.txt"):
        read_all(sample.path, keyring, [ghost])


def test_an_encrypted_copy_without_a_key_for_it_is_key_missing(tmp_path: Path) -> None:
    sample = write_sample(tmp_path)
    sealed = sample.path.with_name("copy.zip.age")
    with sealed.open("wb") as out:
        Keyring(tmp_path / "other-server").encrypt(sample.path, out)
    stranger = Keyring(tmp_path / "data")
    with pytest.raises(KeyMissing):
        copy_entries(sealed, stranger)
    with pytest.raises(KeyMissing):
        read_all(sealed, stranger, sample.entries)
    with pytest.raises(KeyMissing):
        copy_entries(sealed, None)


def test_an_encrypted_copy_cut_short_is_damaged_not_read(tmp_path: Path) -> None:
    sample = write_sample(tmp_path)
    keyring = Keyring(tmp_path / "data")
    sealed = sample.path.with_name("copy.zip.age")
    with sealed.open("wb") as out:
        keyring.encrypt(sample.path, out)
    data = sealed.read_bytes()
    sealed.write_bytes(data[: len(data) * 2 // 3])
    last = [entry for entry in sample.entries if entry.kind is EntryKind.FILE][-1]
    with pytest.raises((EncryptedDamaged, InvalidArchive)):
        read_all(sealed, keyring, [last])
