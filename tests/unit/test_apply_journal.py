"""The apply journal file: round trip, atomic replacement, unreadable files, clearing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from server.model.item_merge import ItemChoice
from server.model.records import EntryKind, ManifestEntry, OperationError
from server.storage.apply_journal import (
    ApplyJournal,
    ApplyPhase,
    JournalRecord,
    JournalUnreadable,
)

ENTRY = ManifestEntry("settings", "audio.json", EntryKind.FILE, 12, "ab" * 32, 0o644, datetime(2026, 1, 2, tzinfo=UTC))


def record(**changes: object) -> JournalRecord:
    base = JournalRecord(
        operation_id="op_1",
        restore_point_id="rp_1",
        phase=ApplyPhase.PREPARING,
        safety_restore_point_id="rp_2",
        keep_safety_restore_point=True,
    )
    return base.advance(changes.pop("phase", ApplyPhase.PREPARING), **changes)  # type: ignore[arg-type]


def test_round_trip(tmp_path: Path) -> None:
    journal = ApplyJournal(tmp_path / "apply-journal.json")
    assert journal.read() is None
    written = record(
        phase=ApplyPhase.ROLLING_BACK,
        sources=("settings",),
        rollback_entries=(ENTRY,),
        error=OperationError("APPLY_FAILED", "boom"),
        restart_started=True,
    )
    journal.write(written)
    assert journal.read() == written
    assert [p.name for p in tmp_path.iterdir()] == ["apply-journal.json"]  # no temp file left


def test_round_trip_of_an_item_apply(tmp_path: Path) -> None:
    """The items and the restart choice come back as written, so a resumed item apply merges
    the same list; a journal of an earlier version (neither key) is a whole apply that restarts."""
    journal = ApplyJournal(tmp_path / "apply-journal.json")
    items = (ItemChoice("site", "conf.d"), ItemChoice("settings", "audio.json", "/masterVolume"))
    written = record(phase=ApplyPhase.APPLYING, only_sources=("settings", "site"), items=items, restart=False)
    journal.write(written)
    assert journal.read() == written
    data = json.loads(journal.path.read_text())
    del data["items"], data["restart"]
    journal.path.write_text(json.dumps(data))
    old = journal.read()
    assert old is not None and old.items is None and old.restart is True


def test_round_trip_of_an_item_apply_in_place(tmp_path: Path) -> None:
    """Each item's state before and after comes back as written (a restart puts every item to
    one or the other); a journal without the keys is not in place."""
    journal = ApplyJournal(tmp_path / "apply-journal.json")
    before = ManifestEntry("site", "conf.d/main.yaml", EntryKind.FILE, 3, "cd" * 32, 0o600, None)
    after = ManifestEntry(
        "site", "conf.d/main.yaml", EntryKind.FILE, 5, "ef" * 32, 0o644, datetime(2026, 1, 2, tzinfo=UTC)
    )
    written = record(
        phase=ApplyPhase.APPLYING,
        sources=("site",),
        items=(ItemChoice("site", "conf.d/main.yaml"),),
        in_place=True,
        rollback_entries=(before,),
        after_entries=(after,),
    )
    journal.write(written)
    assert journal.read() == written
    data = json.loads(journal.path.read_text())
    del data["inPlace"], data["afterEntries"]
    journal.path.write_text(json.dumps(data))
    old = journal.read()
    assert old is not None and old.in_place is False and old.after_entries == ()


def test_write_replaces_the_whole_file(tmp_path: Path) -> None:
    journal = ApplyJournal(tmp_path / "apply-journal.json")
    journal.write(record(rollback_entries=(ENTRY,) * 50))
    journal.write(record(phase=ApplyPhase.FINISHED))
    assert journal.read().phase is ApplyPhase.FINISHED
    assert journal.read().rollback_entries == ()


@pytest.mark.parametrize("content", ["", "{", '{"formatVersion": 99}', '{"formatVersion": 1}', "[]"])
def test_unreadable_journal_is_reported_and_can_be_set_aside(tmp_path: Path, content: str) -> None:
    journal = ApplyJournal(tmp_path / "apply-journal.json")
    journal.path.write_text(content)
    with pytest.raises(JournalUnreadable):
        journal.read()
    kept = journal.set_aside()
    assert kept.read_text() == content
    assert journal.read() is None


def test_clear_only_removes_the_named_operations_journal(tmp_path: Path) -> None:
    journal = ApplyJournal(tmp_path / "apply-journal.json")
    journal.write(record())
    journal.clear("op_other")
    assert journal.read() is not None
    journal.clear("op_1")
    assert journal.read() is None
    journal.clear()  # nothing there: fine
