"""One item of a restore point as a user names it: its kind, and the path rules for asking for it.

A restore point keeps manifest entries (a folder's files, folders and links; the settings
store's module documents `<module>.json`; a database's table files `<table>.jsonl`). A user
browses, downloads and puts back *items*: the same entries, with the kind their source gives
them (a settings document is a MODULE, a table file a TABLE, named by the table alone).
Every path a client sends goes through `parse_item_path` first: it is refused whole (never
cleaned up into another path) when it could name something outside its source.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import datetime

from server.model.errors import InvalidInput, quoted
from server.model.records import EntryKind, ManifestEntry

# The kinds of source, as the config file and the sources name them (`Source.kind`).
SETTINGS_SOURCE = "settings"
FOLDER_SOURCE = "directory"
DATABASE_SOURCE = "database"

MODULE_SUFFIX = ".json"  # a settings module's document in a restore point
TABLE_SUFFIX = ".jsonl"  # a database table's file in a restore point (server/sources/database/table_files.py)
POINTER_MARK = "#"  # in the settings source, "audio.json#/volume": one setting of a module

# RFC 6901: "" (the whole document) or "/" tokens, where "~" is only ever "~0" or "~1".
_POINTER = re.compile(r"(/([^~]|~[01])*)*")


class ItemKind(enum.StrEnum):
    FILE = "FILE"
    FOLDER = "FOLDER"
    SYMLINK = "SYMLINK"
    MODULE = "MODULE"
    TABLE = "TABLE"


@dataclass(frozen=True, slots=True)
class Item:
    """What a restore point (or a local copy) holds at one path of one source."""

    source: str
    path: str
    kind: ItemKind
    size: int | None
    sha256: str | None
    mode: int | None
    mtime: datetime | None
    row_count: int | None = None  # a table's rows, when the capture counted them


@dataclass(frozen=True, slots=True)
class ItemPath:
    """A checked item path: `path` as the manifest keeps it ("" for a source's top level), and
    for one setting of a settings module the RFC 6901 `pointer` into its document."""

    path: str
    pointer: str | None = None


def parse_item_path(path: str, *, source_kind: str | None, field: str = "path") -> ItemPath:
    """Check a path a client sent: relative, '/'-separated, no '.', '..' or empty part, no NUL.

    In the settings source a path may end in `#` and an RFC 6901 pointer (one setting of the
    module). Raises InvalidInput naming what is wrong; never changes the path into another."""
    if "\x00" in path:
        raise InvalidInput(f"path {quoted(path)} contains a NUL byte", field=field)
    pointer: str | None = None
    if source_kind == SETTINGS_SOURCE and POINTER_MARK in path:
        path, pointer = path.split(POINTER_MARK, 1)
        if not _POINTER.fullmatch(pointer):
            raise InvalidInput(
                f"{quoted(pointer)} after '#' is not an RFC 6901 JSON pointer: it starts with '/' "
                "and writes '~' as '~0' and '/' inside a key as '~1', e.g. 'audio.json#/volume'",
                field=field,
            )
        if not path.endswith(MODULE_SUFFIX) or "/" in path:
            raise InvalidInput("a setting is named in a module's document, e.g. 'audio.json#/volume'", field=field)
    if path.startswith("/"):
        raise InvalidInput(f"path {quoted(path)} is absolute: give it relative to its source's top level", field=field)
    if path and any(part in ("", ".", "..") for part in path.split("/")):
        raise InvalidInput(f"path {quoted(path)} has an empty, '.' or '..' part", field=field)
    return ItemPath(path=path, pointer=pointer)


def item_kind(entry_kind: EntryKind, source_kind: str | None) -> ItemKind:
    if source_kind == SETTINGS_SOURCE and entry_kind is EntryKind.FILE:
        return ItemKind.MODULE
    if source_kind == DATABASE_SOURCE and entry_kind is EntryKind.FILE:
        return ItemKind.TABLE
    return {EntryKind.FILE: ItemKind.FILE, EntryKind.DIRECTORY: ItemKind.FOLDER, EntryKind.SYMLINK: ItemKind.SYMLINK}[
        entry_kind
    ]


def item_path_of_entry(entry_path: str, source_kind: str | None) -> str:
    """The path a user sees: a table by its name alone, everything else as the manifest keeps it."""
    if source_kind == DATABASE_SOURCE:
        return entry_path.removesuffix(TABLE_SUFFIX)
    return entry_path


def entry_path_of_item(item_path: str, source_kind: str | None) -> str:
    """The manifest path of an item path (the inverse of item_path_of_entry)."""
    if source_kind == DATABASE_SOURCE and item_path:
        return item_path + TABLE_SUFFIX
    return item_path


def item_of_entry(entry: ManifestEntry, source_kind: str | None, *, row_count: int | None = None) -> Item:
    folder = entry.kind is EntryKind.DIRECTORY
    return Item(
        source=entry.source,
        path=item_path_of_entry(entry.path, source_kind),
        kind=item_kind(entry.kind, source_kind),
        size=None if folder else entry.size,
        sha256=entry.sha256,
        mode=entry.mode,
        mtime=entry.mtime,
        row_count=row_count,
    )


def parent_of(entry_path: str) -> str:
    """The folder holding a path ("" for a source's top level)."""
    return entry_path.rpartition("/")[0]


def is_under(entry_path: str, folder: str) -> bool:
    """Whether a path is the folder itself or anywhere inside it ("" holds everything)."""
    return not folder or entry_path == folder or entry_path.startswith(folder + "/")
