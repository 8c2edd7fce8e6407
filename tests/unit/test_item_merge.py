"""model/item_merge.py: a source's entries with chosen items put back, and one setting set."""

from __future__ import annotations

from typing import Any

import pytest

from server.model.errors import InvalidInput
from server.model.item_merge import merge_entries, set_setting
from server.model.records import EntryKind, ManifestEntry


def entry(path: str, digest: str | None = "x", kind: EntryKind = EntryKind.FILE) -> ManifestEntry:
    return ManifestEntry(source="site", path=path, kind=kind, size=1, sha256=digest, mode=0o644, mtime=None)


def folder(path: str) -> ManifestEntry:
    return entry(path, None, EntryKind.DIRECTORY)


def test_a_folder_goes_back_whole_and_the_rest_stays() -> None:
    now = [folder("a"), entry("a/kept", "new"), entry("a/added"), entry("b", "changed since")]
    then = [folder("a"), entry("a/kept", "old"), entry("a/removed"), entry("b", "old")]
    merged = merge_entries(now, then, ["a"])
    assert [(e.path, e.sha256) for e in merged] == [
        ("a", None),
        ("a/kept", "old"),
        ("a/removed", "x"),
        ("b", "changed since"),
    ]


def test_a_file_in_a_folder_gone_since_brings_its_folders_back() -> None:
    then = [folder("a"), folder("a/b"), entry("a/b/c"), entry("a/b/other")]
    merged = merge_entries([entry("z")], then, ["a/b/c"])
    assert [e.path for e in merged] == ["a", "a/b", "a/b/c", "z"]  # parents first, not a/b/other


def test_a_name_that_only_starts_like_the_folder_is_not_under_it() -> None:
    merged = merge_entries([entry("ab", "now")], [entry("a"), entry("ab", "then")], ["a"])
    assert [(e.path, e.sha256) for e in merged] == [("a", "x"), ("ab", "now")]


@pytest.mark.parametrize(
    ("now", "then", "pointer", "expected"),
    [
        ({"a": 1, "b": 2}, {"a": 5, "b": 9}, "/a", {"a": 5, "b": 2}),
        ({"a": 1, "gone": 2}, {"a": 1}, "/gone", {"a": 1}),  # absent then, present now: removed
        ({"a": 1}, {"x": {"y": {"z": 1}, "w": 2}}, "/x/y/z", {"a": 1, "x": {"y": {"z": 1}}}),
        ({"l": [1, 2, 3]}, {"l": [7]}, "/l/0", {"l": [7, 2, 3]}),
        ({"l": []}, {"l": [7]}, "/l/0", {"l": [7]}),
        ({"a/b": 1, "c~": 2}, {"a/b": 3, "c~": 4}, "/a~1b", {"a/b": 3, "c~": 2}),
        ({"a": 1}, {"b": 2}, "", {"b": 2}),  # the empty pointer: the whole document
    ],
)
def test_one_setting(now: dict[str, Any], then: dict[str, Any], pointer: str, expected: dict[str, Any]) -> None:
    original = repr(now)
    assert set_setting(now, then, pointer, shown="m.json") == expected
    assert repr(now) == original  # a new document: the one given is not changed


def test_a_setting_in_neither_is_refused() -> None:
    with pytest.raises(InvalidInput, match="neither in the restore point nor in the module now"):
        set_setting({"a": 1}, {"b": 1}, "/c", shown="m.json#/c")
