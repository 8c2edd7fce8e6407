"""Putting back chosen items: a source's entries as they are now, with the chosen items
replaced by a restore point's, and one setting of a module document set from it.

An item apply replaces a whole source with such a merged list (the same machinery as a whole
apply), so what is not chosen is written back as it was captured just before.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jsonpointer

from server.model.errors import InvalidInput, quoted
from server.model.items import POINTER_MARK, is_under
from server.model.records import ManifestEntry


@dataclass(frozen=True, slots=True)
class ItemChoice:
    """One item an apply puts back: its manifest path in its source, and for one setting of
    a settings module the RFC 6901 pointer into the module's document."""

    source: str
    path: str
    pointer: str | None = None

    @property
    def shown(self) -> str:
        """As the client named it (a table by its file name), for logs and messages."""
        return f"{self.source}/{self.path}" + (f"{POINTER_MARK}{self.pointer}" if self.pointer is not None else "")


def merge_entries(
    current: Sequence[ManifestEntry], wanted: Sequence[ManifestEntry], paths: Sequence[str]
) -> list[ManifestEntry]:
    """One source's entries: `current`, with everything at or under each of `paths` replaced by
    what `wanted` (the restore point's) holds there. A folder the restore point holds above a
    chosen path is kept or brought back, so the item has somewhere to go. Parents come first."""

    def chosen(path: str) -> bool:
        return any(is_under(path, folder) for folder in paths)

    def above(path: str) -> bool:
        return any(is_under(folder, path) and folder != path for folder in paths)

    kept = [entry for entry in current if not chosen(entry.path)]
    have = {entry.path for entry in kept}
    brought = [e for e in wanted if chosen(e.path) or (above(e.path) and e.path not in have)]
    return sorted(kept + brought, key=lambda entry: entry.path.split("/"))


def set_setting(now: dict[str, Any], then: dict[str, Any], pointer: str, *, shown: str) -> dict[str, Any]:
    """The module document `now` with the value at `pointer` as `then` has it: set when `then`
    has it (objects missing on the way are made), removed when only `now` has it. A key in
    neither: INVALID_INPUT (there is nothing to put back)."""
    if pointer == "":
        return copy.deepcopy(then)
    in_then = _resolves(then, pointer)
    in_now = _resolves(now, pointer)
    if not in_then and not in_now:
        raise InvalidInput(
            f"{quoted(shown)}: the setting is neither in the restore point nor in the module now; nothing to put back",
            field="items",
        )
    merged = copy.deepcopy(now)
    parts = jsonpointer.JsonPointer(pointer).parts
    if not in_then:
        parent = jsonpointer.JsonPointer.from_parts(parts[:-1]).resolve(merged)
        del parent[int(parts[-1]) if isinstance(parent, list) else parts[-1]]
        return merged
    value = jsonpointer.resolve_pointer(then, pointer)
    node: Any = merged
    for depth, part in enumerate(parts[:-1]):
        if isinstance(node, dict) and part not in node:
            # What the restore point has here, only as deep as the path needs: a missing object
            # is made empty, anything else (a list) is taken whole from the restore point.
            there = jsonpointer.JsonPointer.from_parts(parts[: depth + 1]).resolve(then)
            if not isinstance(there, dict):
                node[part] = copy.deepcopy(there)
                return merged
            node[part] = {}
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        index = int(parts[-1])
        if index < len(node):
            node[index] = copy.deepcopy(value)
        else:
            node.append(copy.deepcopy(value))
    elif isinstance(node, dict):
        node[parts[-1]] = copy.deepcopy(value)
    else:
        raise InvalidInput(f"{quoted(shown)}: the module holds no object or list there now", field="items")
    return merged


def _resolves(document: Any, pointer: str) -> bool:
    try:
        jsonpointer.resolve_pointer(document, pointer)
    except jsonpointer.JsonPointerException:
        return False
    return True


@dataclass(frozen=True, slots=True)
class ItemSelection:
    """Items of one source as a client names them (applyRestorePoint(items:)): paths as
    `items` lists them, a settings path possibly ending in '#' and an RFC 6901 pointer."""

    source: str
    paths: tuple[str, ...]
