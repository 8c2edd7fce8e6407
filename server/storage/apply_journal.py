"""The apply journal: one small JSON file in the data dir saying how far an apply got.

It is written before every change of phase, atomically (temp file, fsync, rename, fsync of
the folder), so after a crash the next start reads either the old phase or the new one,
never a torn file. The methods are blocking; callers run them off the event loop.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from server.model.errors import OperationErrorCode
from server.model.item_merge import ItemChoice
from server.model.records import EntryKind, ManifestEntry, OperationError
from server.storage.durability import fsync_path, write_atomic
from server.storage.full import files_full

log = logging.getLogger(__name__)

FORMAT_VERSION = 1


class ApplyPhase(enum.StrEnum):
    PREPARING = "preparing"  # verifying, snapshotting the state before: nothing changed yet
    APPLYING = "applying"  # sources are being replaced: a restart rolls forward
    ROLLING_BACK = "rolling_back"  # a source failed: a restart finishes restoring the state before
    RESTARTING = "restarting"  # every source is applied; the restart step runs
    FINISHED = "finished"  # the outcome is decided; only the operation's record may lag


@dataclass(frozen=True, slots=True)
class JournalRecord:
    operation_id: str
    restore_point_id: str
    phase: ApplyPhase
    safety_restore_point_id: str  # reserved up front, so a crash can find what it made
    keep_safety_restore_point: bool  # False: it is only the internal rollback snapshot
    sources: tuple[str, ...] = ()  # the sources the apply replaces, in order
    rollback_entries: tuple[ManifestEntry, ...] = ()  # the state before, from APPLYING on
    error: OperationError | None = None  # why it rolls back, or how it finished
    restart_started: bool = False  # the restart command was launched (never launch it twice)
    # The sources the caller chose (applyRestorePoint(sources:)); None: every source. Recorded
    # from PREPARING on, so a resumed apply replaces the very same ones.
    only_sources: tuple[str, ...] | None = None
    # The items the caller chose (applyRestorePoint(items:)); None: whole sources. Each touched
    # source is replaced by its state before (rollback_entries) with these items put back, so
    # a resumed apply merges the very same list again.
    items: tuple[ItemChoice, ...] | None = None
    restart: bool = True  # False: the caller (or an item apply of settings only) needs no restart
    # An item apply in place (folder items, services/apply/in_place.py): each chosen item is
    # renamed over its target instead of the source being replaced. rollback_entries then hold
    # each item's state before (and the folders above it), after_entries its state after; a
    # restart puts every item to one or the other, whole.
    in_place: bool = False
    after_entries: tuple[ManifestEntry, ...] = ()
    updated_at: datetime = dataclasses.field(default_factory=lambda: datetime.now(UTC))

    def advance(self, phase: ApplyPhase, **changes: Any) -> JournalRecord:
        return dataclasses.replace(self, phase=phase, updated_at=datetime.now(UTC), **changes)


class JournalUnreadable(Exception):
    """The journal exists but cannot be understood (set aside, never guessed at)."""


class ApplyJournal:
    def __init__(self, path: Path) -> None:
        self.path = path
        # The state before an apply (tens of thousands of entries for a big folder) is the
        # same in every record from APPLYING on: it is encoded once, not at every phase.
        self._encoded: tuple[tuple[ManifestEntry, ...], orjson.Fragment] | None = None

    def read(self) -> JournalRecord | None:
        """The journal, or None when no apply is in progress."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            return _decode(json.loads(text))
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise JournalUnreadable(f"{self.path}: {error}") from error

    def write(self, record: JournalRecord) -> None:
        """Replace the journal atomically and durably."""
        data = orjson.dumps(_encode(record, self._entries(record.rollback_entries)))
        try:
            write_atomic(self.path, data)
        except OSError as error:
            if (full := files_full(error, f"the apply journal ({self.path})")) is not None:
                raise full from None
            raise

    def _entries(self, entries: tuple[ManifestEntry, ...]) -> orjson.Fragment:
        if self._encoded is None or self._encoded[0] is not entries:
            self._encoded = (entries, orjson.Fragment(orjson.dumps([_encode_entry(e) for e in entries])))
        return self._encoded[1]

    def clear(self, operation_id: str | None = None) -> None:
        """Remove the journal (only if it is `operation_id`'s, when given)."""
        self._encoded = None
        if operation_id is not None:
            try:
                current = self.read()
            except JournalUnreadable:
                return
            if current is None or current.operation_id != operation_id:
                return
        self.path.unlink(missing_ok=True)
        fsync_path(self.path.parent)

    def set_aside(self) -> Path:
        """Move an unreadable journal out of the way, keeping it for a person to look at."""
        target = self.path.with_name(f"{self.path.name}.unreadable-{datetime.now(UTC):%Y%m%dT%H%M%S}")
        os.replace(self.path, target)
        return target


def _encode(record: JournalRecord, rollback_entries: orjson.Fragment) -> dict[str, Any]:
    return {
        "formatVersion": FORMAT_VERSION,
        "operationId": record.operation_id,
        "restorePointId": record.restore_point_id,
        "phase": record.phase.value,
        "safetyRestorePointId": record.safety_restore_point_id,
        "keepSafetyRestorePoint": record.keep_safety_restore_point,
        "sources": list(record.sources),
        "rollbackEntries": rollback_entries,
        "error": {"code": record.error.code, "message": record.error.message} if record.error else None,
        "restartStarted": record.restart_started,
        "onlySources": list(record.only_sources) if record.only_sources is not None else None,
        "items": [[c.source, c.path, c.pointer] for c in record.items] if record.items is not None else None,
        "restart": record.restart,
        "inPlace": record.in_place,
        "afterEntries": [_encode_entry(e) for e in record.after_entries],
        "updatedAt": record.updated_at.isoformat(),
    }


def _decode(data: dict[str, Any]) -> JournalRecord:
    if data.get("formatVersion") != FORMAT_VERSION:
        raise ValueError(f"unknown journal format version {data.get('formatVersion')!r}")
    error = data["error"]
    return JournalRecord(
        operation_id=data["operationId"],
        restore_point_id=data["restorePointId"],
        phase=ApplyPhase(data["phase"]),
        safety_restore_point_id=data["safetyRestorePointId"],
        keep_safety_restore_point=bool(data["keepSafetyRestorePoint"]),
        sources=tuple(data["sources"]),
        rollback_entries=tuple(_decode_entry(e) for e in data["rollbackEntries"]),
        error=OperationError(OperationErrorCode.stored(error["code"]), error["message"]) if error else None,
        restart_started=bool(data["restartStarted"]),
        # Absent in journals of earlier versions, which always applied every source.
        only_sources=tuple(data["onlySources"]) if data.get("onlySources") is not None else None,
        # Absent in journals of earlier versions, which put back whole sources and restarted.
        items=tuple(ItemChoice(*choice) for choice in data["items"]) if data.get("items") is not None else None,
        restart=bool(data.get("restart", True)),
        in_place=bool(data.get("inPlace", False)),  # absent in earlier journals: never in place
        after_entries=tuple(_decode_entry(e) for e in data.get("afterEntries", ())),
        updated_at=datetime.fromisoformat(data["updatedAt"]),
    )


def _encode_entry(entry: ManifestEntry) -> dict[str, Any]:
    return {
        "source": entry.source,
        "path": entry.path,
        "kind": entry.kind.value,
        "size": entry.size,
        "sha256": entry.sha256,
        "mode": entry.mode,
        "mtime": entry.mtime.isoformat() if entry.mtime else None,
    }


def _decode_entry(data: dict[str, Any]) -> ManifestEntry:
    return ManifestEntry(
        source=data["source"],
        path=data["path"],
        kind=EntryKind(data["kind"]),
        size=int(data["size"]),
        sha256=data["sha256"],
        mode=int(data["mode"]),
        mtime=datetime.fromisoformat(data["mtime"]) if data["mtime"] else None,
    )
