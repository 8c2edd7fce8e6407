"""Folder items go back in place, at their own size: only the chosen paths are captured (the
safety restore point holds just them and is marked items-only, so applying it later puts back
only them), each item is staged beside its target and renamed over it, and the journal holds
each item's state before and after. A SIGKILL at any step (after the journal, between two
renames, ...) leaves, after the next start, every item either all as before or all as after,
nothing half-written and no hidden staging or trash names behind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.api.test_apply_crash import check_finished, restart_after
from tests.support.api import create_and_wait, execute, wait_for_operation
from tests.support.apply import restore_points, wait_for_pause
from tests.support.config_file import write_config
from tests.support.folder_source import make_tree, tree_state

APPLY = """mutation($id: ID!, $confirm: String!, $items: [ItemSelection!], $restart: Boolean) {
    applyRestorePoint(restorePointId: $id, confirm: $confirm, items: $items, restart: $restart) {
        operation { id } userErrors { code message } } }"""
WHOLE = """mutation($id: ID!, $confirm: String!) { applyRestorePoint(restorePointId: $id, confirm: $confirm) {
    operation { id } userErrors { code message } } }"""
DONE = """query($id: ID!) { operation(id: $id) { status error { code message }
    changes { added removed changed unchanged } safetyRestorePoint { id origin } log { message } } }"""
PREVIEW = """query($id: ID!) { applyPreview(restorePointId: $id) {
    summary { added removed changed unchanged } changes(first: 100) { edges { node { path } } } } }"""
ENTRIES = "query($id: ID!) { restorePoint(id: $id) { itemsOnly entries { source path } } }"
# A changed file, a folder with a changed and an added file, and a file removed since.
ITEMS = [{"source": "site", "paths": ["conf.d/main.yaml", "media", "start.sh"]}]
CHOSEN = ("conf.d/main.yaml", "media", "start.sh")
BEFORE_CHANGES = {"safety", "verify"}


def change_since(site: Path) -> None:
    (site / "conf.d" / "main.yaml").write_text("listen: 8080\n")
    (site / "media" / "logo.bin").write_bytes(b"changed since")
    (site / "media" / "added.txt").write_text("added since\n")
    (site / "start.sh").unlink()
    (site / "notes.txt").write_text("outside the items: stays\n")


def chosen(path: str) -> bool:
    return any(path == c or path.startswith(c + "/") for c in CHOSEN)


def leftovers(site: Path) -> list[str]:
    return sorted(str(p) for p in site.parent.rglob("*") if ".backups-" in p.name and "data" not in p.parts)


@pytest.mark.slow
@pytest.mark.parametrize("step", ["safety", "verify", "applying", "item-renamed", "applied:site", "restart", "finish"])
async def test_killed_at_each_step_of_an_item_apply_in_place(make_server_process, tmp_path: Path, step: str) -> None:
    config = write_config(tmp_path, settings=True, page=False)
    site = tmp_path / "site"
    make_tree(site)
    proc = make_server_process("data", BACKUPS_CONFIG=str(config), BACKUPS_TEST_PAUSE_AT=step).start()
    then_tree = tree_state(site)
    point = (await create_and_wait(proc, "then"))["restorePoint"]["id"]
    change_since(site)
    old_tree = tree_state(site)
    points_before = await restore_points(proc)
    new_tree = {k: v for k, v in old_tree.items() if not chosen(k)} | {k: v for k, v in then_tree.items() if chosen(k)}

    payload = (await execute(proc, APPLY, id=point, confirm=point, items=ITEMS))["applyRestorePoint"]
    assert payload["userErrors"] == [], payload
    op_id = payload["operation"]["id"]
    paused_at = await wait_for_pause(proc, op_id)
    if step == "item-renamed":  # killed between two renames: one item is new, the others old
        assert (site / "conf.d" / "main.yaml").read_text() != "listen: 8080\n"
        assert (site / "media" / "added.txt").exists()
    await restart_after(proc, proc.kill, drop=("BACKUPS_TEST_PAUSE_AT",))
    full = await check_finished(proc, op_id, paused_at)

    if step in BEFORE_CHANGES:
        assert full["status"] == "FAILED" and full["error"]["code"] == "INTERRUPTED_BEFORE_CHANGES", full
        assert tree_state(site) == old_tree
        assert await restore_points(proc) == points_before  # the safety restore point is gone
    else:
        assert full["status"] == "SUCCEEDED", full
        assert tree_state(site) == new_tree
        assert full["safetyRestorePoint"]["origin"] == "SAFETY"
    assert leftovers(site) == []


async def test_the_safety_restore_point_holds_only_the_items_and_puts_back_only_them(
    make_server, tmp_path: Path
) -> None:
    config = write_config(tmp_path, settings=True, page=False)
    site = tmp_path / "site"
    make_tree(site)
    server = make_server("data", BACKUPS_CONFIG=str(config)).start()
    then_tree = tree_state(site)
    point = (await create_and_wait(server, "then"))["restorePoint"]["id"]
    change_since(site)
    old_tree = tree_state(site)

    payload = (await execute(server, APPLY, id=point, confirm=point, items=ITEMS, restart=False))["applyRestorePoint"]
    assert payload["userErrors"] == [], payload
    final = await wait_for_operation(server, payload["operation"]["id"])
    assert final["status"] == "SUCCEEDED", final
    done: dict[str, Any] = (await execute(server, DONE, id=final["id"]))["operation"]
    assert done["changes"] == {"added": 1, "removed": 1, "changed": 2, "unchanged": 1}  # the folder media
    lines = [line["message"] for line in done["log"]]
    assert any("each item is renamed in place" in m for m in lines), lines
    assert any(m.startswith("Read back: the configuration matches") for m in lines), lines
    assert tree_state(site) == {k: v for k, v in old_tree.items() if not chosen(k)} | {
        k: v for k, v in then_tree.items() if chosen(k)
    }
    assert leftovers(site) == []

    # The safety restore point: the chosen paths as they were (start.sh was gone: not in it),
    # and the folder above one of them; nothing else of the source.
    safety = done["safetyRestorePoint"]["id"]
    shown = (await execute(server, ENTRIES, id=safety))["restorePoint"]
    assert shown["itemsOnly"] == ["site/conf.d/main.yaml", "site/media", "site/start.sh"]
    assert (await execute(server, ENTRIES, id=point))["restorePoint"]["itemsOnly"] is None
    entries = shown["entries"]
    assert sorted(e["path"] for e in entries) == [
        "conf.d",
        "conf.d/main.yaml",
        "media",
        "media/added.txt",
        "media/logo.bin",
    ]

    # Applying it (a whole apply, as a user would) puts back just those items: start.sh goes
    # again, the rest of the folder (and what changed there since) stays as it is now.
    (site / "notes.txt").write_text("changed after the item apply\n")
    (site / "conf.d" / "Ünïcödé ☃.json").write_text("{}\n")
    now = tree_state(site)
    preview = (await execute(server, PREVIEW, id=safety))["applyPreview"]
    # (the preview counts the whole source as unchanged, as for any item preview)
    assert preview["summary"] == {"added": 1, "removed": 1, "changed": 2, "unchanged": 6}, preview
    assert {node["node"]["path"] for node in preview["changes"]["edges"]} == {
        "conf.d/main.yaml",
        "media/logo.bin",
        "media/added.txt",
        "start.sh",
    }
    payload = (await execute(server, WHOLE, id=safety, confirm=safety))["applyRestorePoint"]
    assert payload["userErrors"] == [], payload
    final = await wait_for_operation(server, payload["operation"]["id"])
    assert final["status"] == "SUCCEEDED", final
    assert tree_state(site) == {k: v for k, v in now.items() if not chosen(k)} | {
        k: v for k, v in old_tree.items() if chosen(k)
    }
    assert leftovers(site) == []


async def test_a_failure_between_two_renames_puts_every_item_back_as_it_was(make_server, tmp_path: Path) -> None:
    config = write_config(tmp_path, settings=True, page=False)
    site = tmp_path / "site"
    make_tree(site)
    server = make_server("data", BACKUPS_CONFIG=str(config), BACKUPS_TEST_FAIL_AT="item-renamed").start()
    point = (await create_and_wait(server, "then"))["restorePoint"]["id"]
    change_since(site)
    old_tree = tree_state(site)

    payload = (await execute(server, APPLY, id=point, confirm=point, items=ITEMS))["applyRestorePoint"]
    assert payload["userErrors"] == [], payload
    final = await wait_for_operation(server, payload["operation"]["id"])
    assert final["status"] == "FAILED" and final["error"]["code"] == "APPLY_FAILED", final
    assert "put back as they were before the apply" in final["error"]["message"], final
    assert tree_state(site) == old_tree  # the item renamed first is back as it was too
    assert leftovers(site) == []


async def test_a_link_put_above_an_item_is_never_followed(make_server, tmp_path: Path) -> None:
    config = write_config(tmp_path, settings=True, page=False)
    site = tmp_path / "site"
    make_tree(site)
    server = make_server("data", BACKUPS_CONFIG=str(config)).start()
    point = (await create_and_wait(server, "then"))["restorePoint"]["id"]
    outside = tmp_path / "outside"
    (site / "conf.d").rename(outside)
    (site / "conf.d").symlink_to(outside)  # the folder above the item is now a link out of the tree
    (outside / "main.yaml").write_text("outside the tree\n")
    before = tree_state(outside), tree_state(site)

    payload = await execute(server, APPLY, id=point, confirm=point, items=[ITEMS[0] | {"paths": ["conf.d/main.yaml"]}])
    assert payload["applyRestorePoint"]["userErrors"] == [], payload
    final = await wait_for_operation(server, payload["applyRestorePoint"]["operation"]["id"])
    assert final["status"] == "FAILED" and final["error"]["code"] == "APPLY_FAILED", final
    assert "links are never followed" in final["error"]["message"], final
    assert (tree_state(outside), tree_state(site)) == before
    assert leftovers(site) == [] and [p.name for p in outside.iterdir() if ".backups-" in p.name] == []
