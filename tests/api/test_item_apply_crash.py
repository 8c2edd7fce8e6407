"""The server dies (SIGKILL at each named step, via the test-only BACKUPS_TEST_PAUSE_AT) during
an item apply (a folder of a folder source and one setting): after the next start each source
is entirely as it was or entirely as the item apply makes it, never a mix, and the operation
has finished. Rolling forward merges the same items into the state before kept in the journal,
so changes made since the restore point outside the items survive the crash too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.api.test_apply_crash import check_finished, restart_after
from tests.support.api import create_and_wait, execute, update_settings
from tests.support.apply import modules, restore_points, wait_for_pause
from tests.support.config_file import write_config
from tests.support.folder_source import make_tree, tree_state

APPLY = """mutation($id: ID!, $confirm: String!, $items: [ItemSelection!]) {
    applyRestorePoint(restorePointId: $id, confirm: $confirm, items: $items) { operation { id } userErrors { code message } } }"""
ITEMS = [
    {"source": "site", "paths": ["conf.d"]},
    {"source": "settings", "paths": ["audio.json#/masterVolume"]},
]
BEFORE_CHANGES = {"safety", "verify"}  # an item apply captures the state before first, then verifies


@pytest.mark.slow
@pytest.mark.parametrize(
    "step", ["safety", "verify", "applying", "applied:settings", "applied:site", "restart", "finish"]
)
async def test_killed_at_each_step_of_an_item_apply(make_server_process, tmp_path: Path, step: str) -> None:
    config = write_config(tmp_path, settings=True, page=False)
    site = tmp_path / "site"
    make_tree(site)
    proc = make_server_process("data", BACKUPS_CONFIG=str(config), BACKUPS_TEST_PAUSE_AT=step).start()
    then_tree, then_audio = tree_state(site), (await modules(proc))["audio"]
    point = (await create_and_wait(proc, "then"))["restorePoint"]["id"]

    (site / "conf.d" / "main.yaml").write_text("listen: 8080\n")
    (site / "conf.d" / "added.txt").write_text("added since\n")
    (site / "media" / "logo.bin").write_bytes(b"changed since, outside the items")
    await update_settings(proc, "audio", {"masterVolume": 3.0, "newKey": "kept"})
    old_tree, old_settings = tree_state(site), await modules(proc)
    points_before = await restore_points(proc)
    new_tree = {k: v for k, v in old_tree.items() if not k.startswith("conf.d")}
    new_tree |= {k: v for k, v in then_tree.items() if k.startswith("conf.d")}
    new_audio: dict[str, Any] = {**old_settings["audio"], "masterVolume": then_audio["masterVolume"]}
    assert new_tree != old_tree and new_audio != old_settings["audio"]

    payload = (await execute(proc, APPLY, id=point, confirm=point, items=ITEMS))["applyRestorePoint"]
    assert payload["userErrors"] == [], payload
    op_id = payload["operation"]["id"]
    paused_at = await wait_for_pause(proc, op_id)
    await restart_after(proc, proc.kill, drop=("BACKUPS_TEST_PAUSE_AT",))
    full = await check_finished(proc, op_id, paused_at)

    settings = await modules(proc)
    if step in BEFORE_CHANGES:
        assert full["status"] == "FAILED" and full["error"]["code"] == "INTERRUPTED_BEFORE_CHANGES", full
        assert tree_state(site) == old_tree and settings == old_settings
        assert await restore_points(proc) == points_before  # the safety restore point is gone
    else:
        assert full["status"] == "SUCCEEDED", full
        assert tree_state(site) == new_tree
        assert settings["audio"] == new_audio
        assert {k: v for k, v in settings.items() if k != "audio"} == {
            k: v for k, v in old_settings.items() if k != "audio"
        }
        assert full["safetyRestorePoint"]["origin"] == "SAFETY"
    assert (await update_settings(proc, "audio", {"masterVolume": 5}))["userErrors"] == []
