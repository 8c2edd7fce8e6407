"""A pydantic error in the config file, as the one line a person reads.

Pydantic reports every problem it finds, in its own words, located by a path such as
`sources.0.folder.path`. The person starting the server gets one: the first a reader of the
file meets, worded like the rest of the server's messages (the entry, the key, what it
expects and, where it helps, what it got). A validator's own message is used as it is.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from server.config.file_models import LOCATION_KINDS, OLDER_KINDS, SOURCE_KINDS, EncryptionTable, NotificationEntry

# What a section that is not what it should be gets told.
SECTIONS = {
    "sources": ("source", SOURCE_KINDS, "declares no sources (add [[sources]] tables)"),
    "locations": ("location", LOCATION_KINDS, "locations must be [[locations]] tables"),
    "encryption": ("", {}, "encryption must be an [encryption] table"),
    "notifications": ("notification", {}, "notifications must be [[notifications]] tables"),
}


def explain(error: ValidationError, document: dict[str, Any]) -> str:
    """The first thing wrong in the file, as one line naming the entry, the key and the problem.

    "First" as a person reads the file: a misspelt top-level key, then each section in turn,
    its entries in order, and in an entry its name, then its kind, then an unknown key."""
    return _line(min(error.errors(), key=_reading_order), document)


def _reading_order(error: ErrorDetails) -> tuple[int, int, int, str]:
    loc = error["loc"]
    if len(loc) == 1 and error["type"] == "extra_forbidden":
        return (0, 0, 0, str(loc[0]))
    section = list(SECTIONS).index(str(loc[0])) + 1
    index = loc[1] if len(loc) > 1 and isinstance(loc[1], int) else 0
    key = [part for part in loc if isinstance(part, str)][-1] if len(loc) > 1 else ""
    if key == "name":
        rank = 0
    elif error["type"].startswith("union_tag"):
        rank = 1
    elif error["type"] == "extra_forbidden":
        return (section, index, 2, key)  # the first unknown key in sorted order, as listed in "allowed"
    else:
        rank = 3
    return (section, index, rank, "")  # min() keeps pydantic's order (the models' field order) among equals


def _line(error: ErrorDetails, document: dict[str, Any]) -> str:
    loc, kind_of_error = error["loc"], error["type"]
    if len(loc) == 1 and kind_of_error == "extra_forbidden":
        return (
            f"unknown top-level key {loc[0]!r} (allowed: [[sources]], [[locations]], [encryption], [[notifications]])"
        )
    section = str(loc[0])
    word, kinds, wrong_section = SECTIONS[section]
    if len(loc) == 1:  # the section itself, or a rule across its entries
        return _message(error) if kind_of_error == "value_error" else wrong_section
    if section == "encryption":
        key = str(loc[1])
        if kind_of_error == "extra_forbidden":
            return f"[encryption]: unknown key {key!r} (allowed: recipients)"
        return f"[encryption]: {_message(error) if kind_of_error == 'value_error' else EncryptionTable.EXPECTS[key]}"
    index = int(loc[1])
    entry = document[section][index]
    if not isinstance(entry, dict):
        return f"{section}[{index}] is not a table"
    name = entry.get("name")
    label = f"{word} {name!r}" if isinstance(name, str) else f"{section}[{index}]"
    if section == "notifications":  # one model, no kind
        return _notification_line(label, loc[2:], error, entry)
    if len(loc) == 2:  # no kind, or one we do not know
        shown = ", ".join(kind for kind in kinds if kind not in OLDER_KINDS)
        return f"{label}: kind must be one of {shown} (got {entry.get('kind')!r})"
    kind, model = str(loc[2]), kinds[str(loc[2])]
    if len(loc) == 3:  # a rule across the entry's keys
        return f"{label}: {_message(error)}"
    key = str(loc[3])
    if kind_of_error == "extra_forbidden":
        allowed = sorted(field.alias or field_name for field_name, field in model.model_fields.items())
        return f"{label}: unknown key {key!r} for a {kind} {word} (allowed: {', '.join(allowed)})"
    if kind_of_error == "value_error":
        return f"{label}: {_message(error)}"
    expects = model.EXPECTS.get(key)  # every key has one (a test checks); pydantic's words otherwise
    if expects is None:
        return f"{label}: {key}: {error['msg']}"
    return f"{label}: " + expects.format(kind=kind, got=repr(entry.get(key)))


def _notification_line(label: str, keys: tuple[int | str, ...], error: ErrorDetails, entry: dict[str, Any]) -> str:
    if not keys or error["type"] == "value_error":  # a rule across the keys, or a validator's own words
        return f"{label}: {_message(error)}"
    key = str(keys[0])
    if error["type"] == "extra_forbidden":
        allowed = sorted(NotificationEntry.model_fields)
        return f"{label}: unknown key {key!r} for a notification (allowed: {', '.join(allowed)})"
    return f"{label}: " + NotificationEntry.EXPECTS.get(key, f"{key}: {error['msg']}")


def _message(error: ErrorDetails) -> str:
    """A validator's own message (pydantic prefixes it with "Value error, ")."""
    return str(error.get("ctx", {}).get("error", error["msg"]))
