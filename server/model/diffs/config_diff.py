"""What differs between two configurations: two restore points, or the running system and a
restore point (the preview of an apply). Entries are matched by (source, path); mtimes
count for nothing, as in a restore point's checksum."""

from __future__ import annotations

import base64
import binascii
import bisect
import enum
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from server.model.errors import InvalidInput
from server.model.records import ManifestEntry


class ChangeKind(enum.StrEnum):
    ADDED = "ADDED"
    REMOVED = "REMOVED"
    CHANGED = "CHANGED"


@dataclass(frozen=True, slots=True)
class Change:
    """One item that differs; `before` is None when added, `after` when removed."""

    source: str
    path: str
    kind: ChangeKind
    before: ManifestEntry | None
    after: ManifestEntry | None


@dataclass(frozen=True, slots=True)
class DiffSummary:
    added: int = 0
    removed: int = 0
    changed: int = 0
    unchanged: int = 0
    added_bytes: int = 0  # the size of what is added
    removed_bytes: int = 0  # the size of what is removed
    changed_bytes: int = 0  # the size of the new content of changed items

    def as_params(self) -> dict[str, int]:
        """The summary as plain JSON, for an operation's params."""
        return {
            "added": self.added,
            "removed": self.removed,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "addedBytes": self.added_bytes,
            "removedBytes": self.removed_bytes,
            "changedBytes": self.changed_bytes,
        }

    @classmethod
    def from_params(cls, params: dict[str, int]) -> DiffSummary:
        return cls(
            added=int(params.get("added", 0)),
            removed=int(params.get("removed", 0)),
            changed=int(params.get("changed", 0)),
            unchanged=int(params.get("unchanged", 0)),
            added_bytes=int(params.get("addedBytes", 0)),
            removed_bytes=int(params.get("removedBytes", 0)),
            changed_bytes=int(params.get("changedBytes", 0)),
        )


# Opens an entry's content (blocking): from the content store, or from the live source.
Opener = Callable[[ManifestEntry], BinaryIO]


@dataclass
class ConfigurationDiff:
    """Every change from `before` to `after`, in source order then path order."""

    summary: DiffSummary
    changes: list[Change]
    fingerprint: str | None = None  # the running configuration's, for a preview
    source_kinds: dict[str, str] = field(default_factory=dict)  # source name: kind ("settings", ...)
    open_before: Opener | None = None
    open_after: Opener | None = None
    # Restore points read while content is diffed: held, so no delete removes their blobs.
    holding: tuple[str, ...] = ()
    before_live: bool = False  # the before side is the running system (a preview)
    _keys: list[tuple[int, str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        order = {name: index for index, name in enumerate(self.source_kinds)}
        self._keys = [(order.get(c.source, len(order)), c.source, c.path) for c in self.changes]
        self._order = order

    def page(
        self, *, first: int, after: str | None, source: str | None, kinds: Sequence[ChangeKind] | None
    ) -> tuple[list[tuple[Change, str]], bool]:
        """Up to `first` changes after the cursor `after` that match the filters, each with
        its cursor; and whether more follow."""
        start = 0
        if after:
            name, path = decode_change_cursor(after)
            start = bisect.bisect_right(self._keys, (self._order.get(name, len(self._order)), name, path))
        wanted = set(kinds) if kinds else None
        found: list[tuple[Change, str]] = []
        for change in self.changes[start:]:
            if source is not None and change.source != source:
                continue
            if wanted is not None and change.kind not in wanted:
                continue
            if len(found) == first:
                return found, True
            found.append((change, encode_change_cursor(change)))
        return found, False


def compare(
    before: Sequence[ManifestEntry], after: Sequence[ManifestEntry], source_order: Sequence[str]
) -> tuple[DiffSummary, list[Change]]:
    """The changes from `before` to `after`, with their summary (blocking: call it in a thread)."""
    old = {(e.source, e.path): e for e in before}
    new = {(e.source, e.path): e for e in after}
    order = {name: index for index, name in enumerate(source_order)}
    changes: list[Change] = []
    counts = {"added": 0, "removed": 0, "changed": 0, "unchanged": 0}
    sizes = {"added": 0, "removed": 0, "changed": 0}
    for key in old.keys() | new.keys():
        was, now = old.get(key), new.get(key)
        if was is None and now is not None:
            changes.append(Change(key[0], key[1], ChangeKind.ADDED, None, now))
            counts["added"] += 1
            sizes["added"] += now.size
        elif now is None and was is not None:
            changes.append(Change(key[0], key[1], ChangeKind.REMOVED, was, None))
            counts["removed"] += 1
            sizes["removed"] += was.size
        elif was is not None and now is not None and _same(was, now):
            counts["unchanged"] += 1
        elif was is not None and now is not None:
            changes.append(Change(key[0], key[1], ChangeKind.CHANGED, was, now))
            counts["changed"] += 1
            sizes["changed"] += now.size
    changes.sort(key=lambda c: (order.get(c.source, len(order)), c.source, c.path))
    summary = DiffSummary(
        **counts, added_bytes=sizes["added"], removed_bytes=sizes["removed"], changed_bytes=sizes["changed"]
    )
    return summary, changes


def _same(a: ManifestEntry, b: ManifestEntry) -> bool:
    return (a.kind, a.size, a.sha256, a.mode) == (b.kind, b.size, b.sha256, b.mode)


def encode_change_cursor(change: Change) -> str:
    raw = json.dumps([change.source, change.path], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_change_cursor(cursor: str) -> tuple[str, str]:
    """The (source, path) a cursor points after; InvalidInput when it was not ours."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        source, path = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(source, str) or not isinstance(path, str):
            raise ValueError
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput("the cursor is not one this server gave out", field="after") from None
    return source, path
