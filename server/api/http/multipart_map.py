"""The multipart request spec's `map`: which file goes where in `operations`, checked first.

Strawberry follows each map path with plain indexing, so a path through null, a number or
a missing key raised a TypeError or IndexError: HTTP 500. Here every path is checked and a
wrong one is refused with a message naming it (the view answers 400).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any


class BadMultipart(ValueError):
    """The multipart request's `operations` or `map` does not fit the spec."""


def place_files(operations: Any, files_map: Any, files: Mapping[str, Any]) -> Any:
    """`operations` with each file put where `map` says (a null in operations, per the spec)."""
    if not isinstance(operations, dict | list):
        raise BadMultipart("The multipart field `operations` must be a JSON object or array.")
    if not isinstance(files_map, dict):
        raise BadMultipart('The multipart field `map` must be a JSON object, e.g. {"0": ["variables.file"]}.')
    placed = copy.deepcopy(operations)
    for name, paths in files_map.items():
        if name not in files:
            raise BadMultipart(f"The map names a file {name[:100]!r} that the request does not carry.")
        if not isinstance(paths, list) or not all(isinstance(path, str) for path in paths):
            raise BadMultipart(f"The map entry for {name[:100]!r} must be an array of paths (strings).")
        for path in paths:
            container, key = _target(placed, path)
            container[key] = files[name]
    return placed


def _target(operations: Any, path: str) -> tuple[Any, Any]:
    """The container and key that `path` (dot-separated) names; it must hold null today."""
    keys = path.split(".")
    node = operations
    for depth, key in enumerate(keys):
        where = ".".join(keys[: depth + 1])
        if isinstance(node, dict):
            if key not in node:
                raise BadMultipart(f"The map path {path[:200]!r} leads nowhere: {where[:200]!r} is not in operations.")
            index: Any = key
        elif isinstance(node, list):
            if not key.isdigit() or int(key) >= len(node):
                raise BadMultipart(f"The map path {path[:200]!r} leads nowhere: no item {where[:200]!r}.")
            index = int(key)
        else:
            parent = ".".join(keys[:depth]) or "operations"
            raise BadMultipart(
                f"The map path {path[:200]!r} goes through {parent[:200]!r}, which is {_kind(node)}, not an object."
            )
        if depth == len(keys) - 1:
            if node[index] is not None:
                raise BadMultipart(f"The map path {path[:200]!r} must point at a null in operations (the file slot).")
            return node, index
        node = node[index]
    raise AssertionError("unreachable: str.split always gives at least one key")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "a string" if isinstance(value, str) else type(value).__name__
