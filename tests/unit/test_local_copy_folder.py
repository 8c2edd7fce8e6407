"""storage/local_copy/folder.py: naming a copy with a record first, finding it again after a
crash by what was recorded, and the staging subfolder start-up empties."""

from __future__ import annotations

import os
from pathlib import Path

from server.storage.leftovers import clear_leftovers
from server.storage.local_copy.folder import STAGING_FOLDER, LocalCopyFolder


def temp_file(folder: Path, data: bytes) -> Path:
    path = folder / ".a.zip.abcdefgh.partial"
    path.write_bytes(data)
    return path


def test_the_record_is_made_before_the_name_and_finds_the_file_under_a_variant(tmp_path: Path) -> None:
    folder = LocalCopyFolder(tmp_path)
    (tmp_path / "a.zip").write_bytes(b"someone else's")
    temp = temp_file(tmp_path, b"ours")
    recorded: list[tuple[int, str, bool]] = []

    def before_naming(path: Path, name: str) -> None:
        recorded.append((os.stat(path).st_ino, name, (tmp_path / "a-2.zip").exists()))

    placed = folder.place(temp, "a.zip", before_naming)
    assert placed == "a-2.zip" and not temp.exists()
    [(inode, name, named_yet)] = recorded
    assert name == "a.zip" and not named_yet
    assert folder.find_placed(name, inode, 4) == "a-2.zip"
    assert folder.find_placed(name, inode, 5) is None  # not the size recorded
    assert folder.find_placed("b.zip", inode, 4) is None  # not a name asked for


def test_a_record_whose_file_was_never_named_finds_nothing(tmp_path: Path) -> None:
    folder = LocalCopyFolder(tmp_path)
    temp = temp_file(tmp_path, b"ours")
    inode = os.stat(temp).st_ino
    assert folder.find_placed("a.zip", inode, 4) is None  # the hidden temp file is not a copy


def test_start_up_empties_the_staging_folder_and_keeps_copies(tmp_path: Path) -> None:
    copies, data = tmp_path / "copies", tmp_path / "data"
    staging = copies / STAGING_FOLDER
    staging.mkdir(parents=True)
    data.mkdir()
    (staging / "20260101-000000_nightly_abcd.zip").write_bytes(b"x" * 1000)
    (staging / ".20260101-000000_nightly_abcd.zip.abcdefgh.partial").write_bytes(b"x")
    (copies / "kept.zip").write_bytes(b"a user's copy")
    removed = clear_leftovers(data_dir=data, local_copies_dir=copies)
    assert os.listdir(staging) == []
    assert (copies / "kept.zip").exists()
    assert removed.summary() == "2 in the local copies staging folder"
    assert [copy.file_name for copy in LocalCopyFolder(copies).list()] == ["kept.zip"]
