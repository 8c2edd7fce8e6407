"""The items an apply (or its preview) puts back, checked against the restore point and the
configured sources before anything starts: every refusal is INVALID_INPUT (UNKNOWN_SOURCE
for a source the restore point has and this server no longer configures), naming the item."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

from server.model.errors import DomainError, InvalidInput, UserErrorCode, quoted
from server.model.item_merge import ItemChoice, ItemSelection, set_setting
from server.model.items import MODULE_SUFFIX, SETTINGS_SOURCE, entry_path_of_item, parse_item_path
from server.model.records import EntryKind, ManifestEntry
from server.sources.base import Source
from server.storage.blobs.content_store import ContentStore

FIELD = "items"


class UnknownSource(DomainError):
    code = UserErrorCode.UNKNOWN_SOURCE


def named_paths(selections: Sequence[ItemSelection], sources: Sequence[Source]) -> list[tuple[str, str]]:
    """The (source, manifest path) of every item named that parses (check_items refuses the
    others): the entries to read for check_items, instead of the whole manifest."""
    kinds = {source.name: source.kind for source in sources}
    named: list[tuple[str, str]] = []
    for selection in selections:
        kind = kinds.get(selection.source)
        for raw in selection.paths if kind is not None else ():
            try:
                parsed = parse_item_path(raw, source_kind=kind, field=FIELD)
            except InvalidInput:
                continue
            if parsed.path:
                named.append((selection.source, entry_path_of_item(parsed.path, kind)))
    return named


def check_items(
    selections: Sequence[ItemSelection],
    point_id: str,
    entries: Sequence[ManifestEntry],
    sources: Sequence[Source],
    *,
    held: Sequence[str] | None = None,
) -> tuple[ItemChoice, ...]:
    """The chosen items as manifest paths, in the order given; refuses what cannot be put back.
    `entries`: the restore point's (at least those at the named paths: named_paths); `held`:
    the sources it holds entries of (when `entries` are not all of them)."""
    if not selections:
        raise InvalidInput(
            "`items` is empty: name at least one item, or leave `items` out for whole sources", field=FIELD
        )
    configured = {source.name: source for source in sources}
    held_sources = set(held) if held is not None else {entry.source for entry in entries}
    by_path = {(entry.source, entry.path): entry for entry in entries}
    choices: list[ItemChoice] = []
    for selection in selections:
        source = configured.get(selection.source)
        if source is None:
            if selection.source in held_sources:
                raise UnknownSource(
                    f"source {quoted(selection.source)} of restore point {point_id} is not configured on this server "
                    "any more: its items cannot be put back; nothing was changed",
                    field=FIELD,
                )
            raise InvalidInput(f"no source named {quoted(selection.source)} is configured", field=FIELD)
        if selection.source not in held_sources:
            raise InvalidInput(
                f"restore point {point_id} holds nothing of source {quoted(selection.source)}", field=FIELD
            )
        if not selection.paths:
            raise InvalidInput(f"no paths are named for source {quoted(selection.source)}", field=FIELD)
        for raw in selection.paths:
            parsed = parse_item_path(raw, source_kind=source.kind, field=FIELD)
            if not parsed.path:
                raise InvalidInput(
                    "an empty path is the whole source: use `sources` for that, `items` for items in it", field=FIELD
                )
            path = entry_path_of_item(parsed.path, source.kind)
            choice = ItemChoice(source.name, path, parsed.pointer)
            if choice in choices:
                raise InvalidInput(f"item {quoted(raw)} of source {quoted(source.name)} is named twice", field=FIELD)
            entry = by_path.get((source.name, path))
            if entry is None:
                raise InvalidInput(_unknown(raw, source, point_id), field=FIELD)
            if source.kind == SETTINGS_SOURCE and entry.kind is not EntryKind.FILE:
                raise InvalidInput(f"{quoted(raw)} is not a settings module", field=FIELD)
            choices.append(choice)
    return tuple(choices)


def _unknown(raw: str, source: Source, point_id: str) -> str:
    message = f"restore point {point_id} has no item {quoted(raw)} in source {quoted(source.name)}"
    if source.kind == SETTINGS_SOURCE and not raw.split("#", 1)[0].endswith(MODULE_SUFFIX):
        message += " (the settings source holds module documents, e.g. 'audio.json', and no folders)"
    elif source.kind != SETTINGS_SOURCE and "#" in raw:
        message += " (a pointer after '#' names one setting only in the settings source)"
    return message


async def check_settings(
    choices: Sequence[ItemChoice], entries: Sequence[ManifestEntry], sources: Sequence[Source], store: ContentStore
) -> None:
    """Refuse a setting (a pointer) that neither the restore point nor the module now has."""
    pointed = [c for c in choices if c.pointer is not None]
    if not pointed:
        return
    by_path = {(entry.source, entry.path): entry for entry in entries}
    now: dict[tuple[str, str], Any] = {}
    for source in sources:
        if source.name in {c.source for c in pointed}:
            for item in await source.capture():
                if item.open is not None:
                    now[(source.name, item.path)] = item.open

    def check() -> None:
        for choice in pointed:
            assert choice.pointer is not None
            entry = by_path[(choice.source, choice.path)]
            assert entry.sha256 is not None
            try:
                with store.open(entry.sha256) as blob:
                    then = json.loads(blob.read())
            except (OSError, ValueError):
                continue  # damaged: the apply's verification refuses it (CONTENT_DAMAGED)
            opener = now.get((choice.source, choice.path))
            current: dict[str, Any] = {}
            if opener is not None:
                with opener() as blob:
                    current = json.loads(blob.read())
            if isinstance(then, dict):
                set_setting(current, then, choice.pointer, shown=choice.shown)

    await asyncio.to_thread(check)
