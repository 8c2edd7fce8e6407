"""parse_item_path, the one check every path a client names an item by goes through, and the
mapping between the paths a user sees and the manifest's."""

from __future__ import annotations

import pytest

from server.model.errors import InvalidInput
from server.model.items import (
    DATABASE_SOURCE,
    FOLDER_SOURCE,
    SETTINGS_SOURCE,
    ItemKind,
    ItemPath,
    entry_path_of_item,
    item_kind,
    item_path_of_entry,
    parse_item_path,
)
from server.model.records import EntryKind

EVERY_KIND = (SETTINGS_SOURCE, FOLDER_SOURCE, DATABASE_SOURCE, None)


@pytest.mark.parametrize("kind", EVERY_KIND)
@pytest.mark.parametrize(
    "path",
    [
        "",
        "a",
        "conf.d/main.yaml",
        "conf.d/Ünïcödé ☃.json",
        "a b/c d",
        "deep/" * 40 + "leaf",
        "...",
        "a/.hidden",
        "..a/b..",
    ],
)
def test_a_relative_path_is_kept_as_it_is(path: str, kind: str | None) -> None:
    assert parse_item_path(path, source_kind=kind) == ItemPath(path=path)


@pytest.mark.parametrize("kind", EVERY_KIND)
@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("a\x00b", "NUL byte"),
        ("\x00", "NUL byte"),
        ("/etc/passwd", "is absolute"),
        ("/", "is absolute"),
        ("..", "'..' part"),
        ("../outside", "'..' part"),
        ("a/../../b", "'..' part"),
        ("a/..", "'..' part"),
        (".", "'.' or '..' part"),
        ("a/./b", "'.' or '..' part"),
        ("a//b", "an empty"),
        ("a/", "an empty"),
    ],
)
def test_a_path_that_could_leave_its_source_is_refused_whole(path: str, says: str, kind: str | None) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_item_path(path, source_kind=kind, field="paths")
    assert says in refused.value.message
    assert refused.value.field == "paths"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("audio.json#", ItemPath("audio.json", "")),  # the whole document
        ("audio.json#/volume", ItemPath("audio.json", "/volume")),
        ("audio.json#/", ItemPath("audio.json", "/")),  # the key "" at the top
        ("lighting.json#/scenes/evening/0", ItemPath("lighting.json", "/scenes/evening/0")),
        ("a.json#/a~1b/m~0n", ItemPath("a.json", "/a~1b/m~0n")),  # keys "a/b" and "m~n"
        ("a.json#/x#y", ItemPath("a.json", "/x#y")),  # only the first '#' splits
        ("a.json#/ü ☃", ItemPath("a.json", "/ü ☃")),
    ],
)
def test_a_setting_is_a_module_document_and_an_rfc_6901_pointer(path: str, expected: ItemPath) -> None:
    assert parse_item_path(path, source_kind=SETTINGS_SOURCE) == expected


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("audio.json#volume", "not an RFC 6901 JSON pointer"),  # no leading '/'
        ("audio.json#/a~2", "not an RFC 6901 JSON pointer"),
        ("audio.json#/a~", "not an RFC 6901 JSON pointer"),
        ("audio.json#~0", "not an RFC 6901 JSON pointer"),
        ("audio#/volume", "named in a module's document"),
        ("#/volume", "named in a module's document"),
        ("dir/audio.json#/volume", "named in a module's document"),
        ("../audio.json#/volume", "named in a module's document"),
        ("/audio.json#/volume", "named in a module's document"),
    ],
)
def test_a_pointer_that_is_not_one_is_refused(path: str, says: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_item_path(path, source_kind=SETTINGS_SOURCE)
    assert says in refused.value.message
    assert refused.value.field == "path"


@pytest.mark.parametrize("kind", [FOLDER_SOURCE, DATABASE_SOURCE, None])
def test_outside_the_settings_source_a_hash_is_part_of_the_name(kind: str | None) -> None:
    assert parse_item_path("notes#1.txt", source_kind=kind) == ItemPath("notes#1.txt")
    assert parse_item_path("a.json#/x", source_kind=kind) == ItemPath("a.json#/x")


def test_a_nul_byte_is_refused_in_a_pointer_too() -> None:
    with pytest.raises(InvalidInput, match="NUL byte"):
        parse_item_path("audio.json#/a\x00", source_kind=SETTINGS_SOURCE)


def test_a_table_is_named_by_the_table_alone() -> None:
    assert item_path_of_entry("users.jsonl", DATABASE_SOURCE) == "users"
    assert entry_path_of_item("users", DATABASE_SOURCE) == "users.jsonl"
    assert entry_path_of_item("", DATABASE_SOURCE) == ""  # the top level stays the top level
    # Other sources, and a source configured no more, keep the manifest's path.
    for kind in (SETTINGS_SOURCE, FOLDER_SOURCE, None):
        assert item_path_of_entry("users.jsonl", kind) == "users.jsonl"
        assert entry_path_of_item("users.jsonl", kind) == "users.jsonl"


@pytest.mark.parametrize(
    ("entry", "source", "kind"),
    [
        (EntryKind.FILE, SETTINGS_SOURCE, ItemKind.MODULE),
        (EntryKind.FILE, DATABASE_SOURCE, ItemKind.TABLE),
        (EntryKind.FILE, FOLDER_SOURCE, ItemKind.FILE),
        (EntryKind.DIRECTORY, FOLDER_SOURCE, ItemKind.FOLDER),
        (EntryKind.SYMLINK, FOLDER_SOURCE, ItemKind.SYMLINK),
        (EntryKind.FILE, None, ItemKind.FILE),  # a source configured no more: what the entry is
        (EntryKind.DIRECTORY, None, ItemKind.FOLDER),
        (EntryKind.SYMLINK, None, ItemKind.SYMLINK),
    ],
)
def test_an_items_kind_comes_from_its_source(entry: EntryKind, source: str | None, kind: ItemKind) -> None:
    assert item_kind(entry, source) is kind
