"""The built-in settings store: modules, each a JSON document, changed by merge patches."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from server.model.errors import InvalidInput, NotFound, quoted
from server.model.names import is_module_name
from server.model.records import Module
from server.operations.signal import Signal
from server.sources.settings.seed import SEED_MODULES
from server.storage.db import modules_repo as repo
from server.storage.db.database import Database

MAX_DOCUMENT_BYTES = 1024 * 1024
# How deep objects and arrays may nest in a module. Deeper is no configuration anyone writes,
# and 1,000 levels overflowed the recursion of the merge and of the JSON encoder (a 500).
MAX_DOCUMENT_DEPTH = 64


def nesting_depth(value: Any, limit: int) -> int:
    """How deep objects and arrays nest in `value` (a scalar is 0), counted without recursion;
    stops counting once past `limit`."""
    deepest = 0
    pending = [(value, 0)]
    while pending:
        node, depth = pending.pop()
        if isinstance(node, Mapping | list | tuple):
            depth += 1
            deepest = max(deepest, depth)
            if depth > limit:
                return deepest
            pending.extend((child, depth) for child in (node.values() if isinstance(node, Mapping) else node))
    return deepest


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON Merge Patch: objects merge recursively, null removes a key."""
    if not isinstance(patch, Mapping):
        return patch
    result = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


class SettingsStore:
    def __init__(self, db: Database, *, check_writable: Callable[[], None] = lambda: None) -> None:
        self._db = db
        self._check_writable = check_writable
        # Writes that passed check_writable and have not committed yet: maintenance (an
        # apply) waits for them, so none lands after its snapshot of the state before.
        self._writes_in_flight = 0
        self._writes_settled = Signal()
        # Told after each committed update (after-change schedules see it at once, no polling).
        self._on_change: list[Callable[[str], None]] = []

    def on_change(self, listener: Callable[[str], None]) -> None:
        """Call `listener(module name)` after every update that committed."""
        self._on_change.append(listener)

    async def wait_for_writes(self) -> None:
        """Return once every update that was already past check_writable has finished."""
        while self._writes_in_flight:
            await self._writes_settled.wait(self._writes_settled.version)

    async def seed_if_empty(self) -> bool:
        """Give a new server its starting modules; returns whether it did."""
        async with self._db.write() as session:
            if not await repo.is_empty(session):
                return False
            for name, settings in SEED_MODULES.items():
                await repo.save_module(session, name, settings)
            return True

    async def modules(self) -> list[Module]:
        async with self._db.read() as session:
            return await repo.list_modules(session)

    async def update(self, name: str, values: Any) -> Module:
        """Merge `values` into module `name` (RFC 7386: null removes a key)."""
        if not isinstance(values, Mapping):
            raise InvalidInput("values must be a JSON object", field="values")
        if nesting_depth(values, MAX_DOCUMENT_DEPTH) > MAX_DOCUMENT_DEPTH:
            raise InvalidInput(
                f"values nest objects or arrays more than {MAX_DOCUMENT_DEPTH} levels deep "
                f"(the limit for a settings module)",
                field="values",
            )
        self._check_writable()
        if not is_module_name(name):  # no such name could exist; don't ask the database
            raise NotFound(f"no settings module named {quoted(name)}", field="module")
        self._writes_in_flight += 1
        try:
            async with self._db.write() as session:
                module = await repo.get_module(session, name)
                if module is None:
                    raise NotFound(f"no settings module named {quoted(name)}", field="module")
                merged = merge_patch(module.settings, values)
                if nesting_depth(merged, MAX_DOCUMENT_DEPTH) > MAX_DOCUMENT_DEPTH:
                    raise InvalidInput(
                        f"module {name!r} would nest more than {MAX_DOCUMENT_DEPTH} levels deep", field="values"
                    )
                if len(json.dumps(merged)) > MAX_DOCUMENT_BYTES:
                    raise InvalidInput(f"module {quoted(name)} would exceed {MAX_DOCUMENT_BYTES} bytes", field="values")
                saved = await repo.save_module(session, name, merged)
        finally:
            self._writes_in_flight -= 1
            self._writes_settled.fire()
        for listener in self._on_change:
            listener(name)
        return saved
