"""Staging before an apply changes anything: which blobs it checks, a damaged blob refused
with CONTENT_DAMAGED, and a cancel that stops it part-way leaving nothing behind."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from server.model.errors import OperationFailed
from server.model.records import (
    EntryKind,
    ManifestEntry,
    Operation,
    OperationKind,
    OperationStatus,
    RestorePoint,
    RestorePointOrigin,
)
from server.operations.live import LiveOperation, OperationCancelled, OperationContext
from server.services.apply.plan import make_plan
from server.services.apply.stage import checked_when_staged, stage_sources
from server.sources.base import OpenBlob
from server.sources.folder.source import FolderSource, StagedFolder
from server.storage.blobs.content_store import ContentStore
from tests.support.capture import capture

POINT = RestorePoint("rp_1", "x", None, RestorePointOrigin.MANUAL, datetime.now(UTC), None, 0, 0, 0, "0" * 64, "test")


class SettingsLike:
    """A source that cannot stage (as the settings and database sources)."""

    kind = "settings"

    def __init__(self, name: str) -> None:
        self.name = name


@pytest.fixture
def store(tmp_path: Path) -> ContentStore:
    return ContentStore(tmp_path / "blobs")


def context() -> tuple[OperationContext, LiveOperation]:
    op = Operation(
        id="op_test",
        kind=OperationKind.APPLY_RESTORE_POINT,
        status=OperationStatus.RUNNING,
        progress=0.0,
        stage=None,
        created_at=datetime.now(UTC),
        started_at=None,
        finished_at=None,
        requested_by=None,
        dismissed=False,
        error=None,
        restore_point_id=None,
        local_copy_id=None,
    )
    live = LiveOperation(op=op)
    return OperationContext(live, notify=lambda live: None), live


async def folder_point(tmp_path: Path, store: ContentStore, files: int = 40) -> tuple[Path, list[ManifestEntry]]:
    root = tmp_path / "site"
    (root / "conf").mkdir(parents=True)
    for index in range(files):
        (root / "conf" / f"{index:03d}.json").write_text(f'{{"n": {index}}}\n' * 50)
    return root, (await capture(FolderSource("site", root), store)).entries


def test_only_the_blobs_of_sources_that_stage_are_left_to_staging() -> None:
    folder = ManifestEntry("site", "a.txt", EntryKind.FILE, 1, "a" * 64, 0o644)
    module = ManifestEntry("settings", "audio.json", EntryKind.FILE, 1, "b" * 64, 0o644)
    plan, _ = make_plan(POINT, [folder, module], [SettingsLike("settings"), FolderSource("site", Path("/x"))])  # type: ignore[list-item]
    assert checked_when_staged(plan) == {"a" * 64}


async def test_a_damaged_blob_is_refused_while_staging_and_nothing_is_left(tmp_path: Path, store: ContentStore) -> None:
    root, entries = await folder_point(tmp_path, store)
    victim = next(e for e in entries if e.path == "conf/017.json")
    blob = store.path_of(victim.sha256 or "")
    blob.write_bytes(blob.read_bytes().replace(b"17", b"71"))
    plan, _ = make_plan(POINT, entries, [FolderSource("site", root)])
    ctx, live = context()

    with pytest.raises(OperationFailed) as raised:
        await stage_sources(ctx, plan, store)

    assert raised.value.code == "CONTENT_DAMAGED"
    assert "conf/017.json" in raised.value.message and "nothing was changed" in raised.value.message
    assert any("does not match its SHA-256" in line.message for line in live.unflushed)
    assert sorted(os.listdir(tmp_path)) == ["blobs", "site"]


class CancelledPartWay(FolderSource):
    """A folder source whose operation is cancelled after it has written a few files."""

    def __init__(self, name: str, path: Path, live: LiveOperation) -> None:
        super().__init__(name, path)
        self.live = live

    def stage(  # type: ignore[override]
        self,
        entries: Sequence[ManifestEntry],
        open_blob: OpenBlob,
        *,
        on_bytes: Callable[[int], None],
        should_stop: Callable[[], bool],
    ) -> StagedFolder:
        written = 0

        def count(size: int) -> None:
            nonlocal written
            written += 1
            if written == 3:
                self.live.cancel_reason = "cancel"
            on_bytes(size)

        return super().stage(entries, open_blob, on_bytes=count, should_stop=should_stop)


async def test_a_cancel_stops_staging_part_way_and_leaves_nothing(tmp_path: Path, store: ContentStore) -> None:
    root, entries = await folder_point(tmp_path, store)
    ctx, live = context()
    plan, _ = make_plan(POINT, entries, [CancelledPartWay("site", root, live)])

    with pytest.raises(OperationCancelled):
        await stage_sources(ctx, plan, store)

    assert sorted(os.listdir(tmp_path)) == ["blobs", "site"]
    assert len(os.listdir(root / "conf")) == 40  # the folder itself was never touched


async def test_staged_sources_commit_later(tmp_path: Path, store: ContentStore) -> None:
    root, entries = await folder_point(tmp_path, store, files=5)
    (root / "conf" / "000.json").write_text("changed")
    plan, _ = make_plan(POINT, entries, [FolderSource("site", root)])
    ctx, _live = context()

    staged = await stage_sources(ctx, plan, store)
    assert (root / "conf" / "000.json").read_text() == "changed"
    await staged["site"].commit()
    assert (root / "conf" / "000.json").read_text() == '{"n": 0}\n' * 50
