"""applyRestorePoint(sources:, expectedFingerprint:) through the real server: only the named
sources are replaced (the safety restore point still holds them all), a configuration changed
since the preview is refused with CONFLICT before anything is touched, and the finished apply
reports what it changed (Operation.changes and its log). A server killed during a partial
apply resumes it with the same sources."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tests.api.test_diff import change_everything
from tests.support.api import (
    OPERATION_FIELDS,
    create_and_wait,
    execute,
    update_settings,
    wait_for_operation,
    wait_until,
)
from tests.support.apply import modules, restore_points, system, wait_for_pause
from tests.support.folder_source import folder_server, make_tree, tree_state
from tests.support.server_process import ServerProcess

APPLY = f"""mutation($id: ID!, $confirm: String!, $sources: [String!], $fingerprint: String, $safety: Boolean) {{
    applyRestorePoint(restorePointId: $id, confirm: $confirm, sources: $sources, expectedFingerprint: $fingerprint,
                      createSafetyRestorePoint: $safety) {{
        operation {{ {OPERATION_FIELDS} }} userErrors {{ code message field }} }} }}"""
DONE = f"""query($id: ID!) {{ operation(id: $id) {{ {OPERATION_FIELDS}
    changes {{ added removed changed unchanged addedBytes removedBytes changedBytes }}
    safetyRestorePoint {{ id checksum }} log {{ message }} }} }}"""
SUMMARY = "summary { added removed changed unchanged addedBytes removedBytes changedBytes }"
PREVIEW_SUMMARY = f"query($id: ID!, $sources: [String!]) {{ applyPreview(restorePointId: $id, sources: $sources) {{ {SUMMARY} fingerprint }} }}"
OPERATIONS = "{ operations(first: 100) { totalCount } }"


async def apply(server: Any, point_id: str, **variables: Any) -> dict[str, Any]:
    return (await execute(server, APPLY, id=point_id, confirm=point_id, **variables))["applyRestorePoint"]


async def finished(server: Any, op_id: str) -> dict[str, Any]:
    final = await wait_for_operation(server, op_id)
    assert final["status"] == "SUCCEEDED", final
    return (await execute(server, DONE, id=op_id))["operation"]


def database_rows(database: Path) -> list[tuple[Any, ...]]:
    import sqlite3

    with sqlite3.connect(database) as conn:
        return conn.execute("SELECT * FROM users ORDER BY id").fetchall()


async def test_apply_only_the_named_sources(make_server, tmp_path: Path) -> None:
    server, site, database = folder_server(make_server, tmp_path, database=True)
    tree_then, rows_then = tree_state(site), database_rows(database)
    point = (await create_and_wait(server, "a"))["restorePoint"]["id"]
    await change_everything(site, database, server)
    settings_now, rows_now = await modules(server), database_rows(database)
    fingerprint_before = (await system(server))["configurationFingerprint"]
    expected = (await execute(server, PREVIEW_SUMMARY, id=point, sources=["site"]))["applyPreview"]["summary"]

    payload = await apply(server, point, sources=["site"])
    assert payload["userErrors"] == [], payload
    done = await finished(server, payload["operation"]["id"])
    assert tree_state(site) == tree_then  # the folder is back
    assert await modules(server) == settings_now  # the others are left as they were
    assert database_rows(database) == rows_now != rows_then
    # The safety restore point holds every source, as it was before.
    assert done["safetyRestorePoint"]["checksum"] == fingerprint_before
    messages = [line["message"] for line in done["log"]]
    assert any("Applying only source(s) 'site'; 'settings', 'appdb' left as they are." in m for m in messages)
    assert any(m.startswith("Read back: the configuration matches") for m in messages), messages
    assert not any("Replacing source 'settings'" in m or "Replacing source 'appdb'" in m for m in messages)

    # The report is what the preview said it would be, and the log lists each path.
    assert done["changes"] == expected
    assert (expected["added"], expected["removed"], expected["changed"]) == (1, 1, 3)
    for line in (
        "Added: site/conf.d/Ünïcödé ☃.json",
        "Removed: site/notes.txt",
        "Changed: site/conf.d/main.yaml",
        "Changed: site/media/logo.bin",
        "Changed: site/start.sh",
    ):
        assert line in messages, (line, messages)

    # Two sources at once, named in any order; the rest is left.
    await update_settings(server, "audio", {"masterVolume": 1.5})
    payload = await apply(server, point, sources=["appdb", "settings"])
    done = await finished(server, payload["operation"]["id"])
    assert database_rows(database) == rows_then
    assert (await modules(server))["audio"]["masterVolume"] != 1.5
    assert (await execute(server, PREVIEW_SUMMARY, id=point))["applyPreview"]["summary"]["changed"] == 0
    assert done["changes"]["changed"] == 2


async def test_unknown_source_names_are_refused_and_nothing_changes(make_server, tmp_path: Path) -> None:
    server, site, database = folder_server(make_server, tmp_path, database=True)
    point = (await create_and_wait(server, "a"))["restorePoint"]["id"]
    await change_everything(site, database, server)
    state = (tree_state(site), await modules(server), database_rows(database), await restore_points(server))
    operations = await execute(server, OPERATIONS)
    for names in (["nosuch"], ["site", "nosuch"], [""]):
        payload = await apply(server, point, sources=names)
        assert payload["operation"] is None
        assert payload["userErrors"][0]["code"] == "INVALID_INPUT" and payload["userErrors"][0]["field"] == "sources"
        assert "configured" in payload["userErrors"][0]["message"]
    assert (tree_state(site), await modules(server), database_rows(database), await restore_points(server)) == state
    assert await execute(server, OPERATIONS) == operations  # no operation was even started
    # An empty list means every source, as no list does.
    payload = await apply(server, point, sources=[])
    await finished(server, payload["operation"]["id"])
    assert (await execute(server, PREVIEW_SUMMARY, id=point))["applyPreview"]["summary"]["changed"] == 0


async def test_a_configuration_changed_since_the_preview_is_a_conflict(make_server, tmp_path: Path) -> None:
    server, site, database = folder_server(make_server, tmp_path, database=True)
    point = (await create_and_wait(server, "a"))["restorePoint"]["id"]
    await change_everything(site, database, server)
    seen = (await execute(server, PREVIEW_SUMMARY, id=point))["applyPreview"]["fingerprint"]
    assert seen == (await system(server))["configurationFingerprint"]

    for change in (
        lambda: (site / "conf.d" / "main.yaml").write_text("listen: 9090\n"),  # a file, behind our back
        lambda: update_settings(server, "audio", {"masterVolume": 2.0}),  # a setting, through the API
    ):
        result = change()
        if asyncio.iscoroutine(result):
            await result
        state = (tree_state(site), await modules(server), database_rows(database), await restore_points(server))
        operations = await execute(server, OPERATIONS)
        payload = await apply(server, point, fingerprint=seen)
        assert payload["operation"] is None
        error = payload["userErrors"][0]
        assert error["code"] == "CONFLICT" and error["field"] == "expectedFingerprint", error
        assert "changed since the preview" in error["message"]
        assert (tree_state(site), await modules(server), database_rows(database), await restore_points(server)) == state
        assert await execute(server, OPERATIONS) == operations
        # The restore point is not left held: it can be compared and deleted as usual.
        seen = (await execute(server, PREVIEW_SUMMARY, id=point))["applyPreview"]["fingerprint"]

    payload = await apply(server, point, fingerprint=seen)  # the fingerprint of the latest preview
    done = await finished(server, payload["operation"]["id"])
    assert any("fingerprint matches" in line["message"] for line in done["log"])
    assert (await execute(server, PREVIEW_SUMMARY, id=point))["applyPreview"]["summary"]["changed"] == 0
    # A partial preview carries the fingerprint of everything: it serves a partial apply too.
    await update_settings(server, "audio", {"masterVolume": 3.0})
    partial = (await execute(server, PREVIEW_SUMMARY, id=point, sources=["settings"]))["applyPreview"]
    payload = await apply(server, point, sources=["settings"], fingerprint=partial["fingerprint"])
    done = await finished(server, payload["operation"]["id"])
    assert done["changes"]["changed"] == 1


async def test_the_log_lists_changed_paths_up_to_a_limit(make_server, tmp_path: Path) -> None:
    server, site, _ = folder_server(make_server, tmp_path, database=True)
    point = (await create_and_wait(server, "a"))["restorePoint"]["id"]
    for number in range(230):
        (site / f"new-{number:03}.txt").write_text(f"{number}\n")
    payload = await apply(server, point, sources=["site"], safety=False)
    done = await finished(server, payload["operation"]["id"])
    assert done["changes"]["removed"] == 230
    messages = [line["message"] for line in done["log"]]
    listed = [m for m in messages if m.startswith("Removed: site/new-")]
    assert len(listed) == 200 and listed[0] == "Removed: site/new-000.txt"
    assert "... and 30 more changes (not listed)." in messages
    # An operation that is no apply has no changes.
    create = await create_and_wait(server, "b")
    assert (await execute(server, DONE, id=create["id"]))["operation"]["changes"] is None


@pytest.mark.slow
async def test_a_partial_apply_killed_midway_resumes_with_the_same_sources(make_server_process, tmp_path) -> None:
    site = tmp_path / "site"
    make_tree(site)
    config = tmp_path / "backups.toml"
    config.write_text(
        '[[sources]]\nname = "site"\nkind = "directory"\n'
        f'path = "{site}"\n\n[[sources]]\nname = "settings"\nkind = "settings"\n'
    )
    proc: ServerProcess = make_server_process(BACKUPS_CONFIG=str(config), BACKUPS_TEST_PAUSE_AT="applied:site").start()
    tree_then = tree_state(site)
    point = (await create_and_wait(proc, "a"))["restorePoint"]["id"]
    (site / "conf.d" / "main.yaml").write_text("listen: 1\n")
    await update_settings(proc, "audio", {"masterVolume": 4.0})
    settings_now = await modules(proc)
    payload = await apply(proc, point, sources=["site"])
    op_id = payload["operation"]["id"]
    await wait_for_pause(proc, op_id)
    journal = (proc.data_dir / "apply-journal.json").read_text()
    assert '"onlySources":["site"]' in journal
    await asyncio.to_thread(proc.kill)
    proc.env_overrides.pop("BACKUPS_TEST_PAUSE_AT")
    await asyncio.to_thread(proc.start)
    done = await finished(proc, op_id)
    messages = [line["message"] for line in done["log"]]
    assert any(m.startswith("Resumed after a restart") for m in messages)
    assert tree_state(site) == tree_then
    assert await modules(proc) == settings_now  # the resumed apply did not replace the settings either
    assert done["changes"]["changed"] == 1
    assert any(m.startswith("Read back: the configuration matches") for m in messages), messages


@contextlib.contextmanager
def module_row_locked(database_url: str, module: str) -> Iterator[None]:
    """Hold the database the way a slow writer would, from outside the server: on SQLite the
    write lock (BEGIN IMMEDIATE), on PostgreSQL the module's row (SELECT ... FOR UPDATE). A
    settings update started meanwhile waits, accepted but not yet committed."""
    engine = create_engine(database_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("BEGIN IMMEDIATE" if connection.dialect.name == "sqlite" else "BEGIN")
            if connection.dialect.name != "sqlite":
                connection.execute(text("SELECT name FROM module WHERE name = :n FOR UPDATE"), {"n": module})
            try:
                yield
            finally:
                connection.exec_driver_sql("ROLLBACK")
    finally:
        engine.dispose()


async def test_a_change_landing_after_the_apply_was_accepted_is_a_conflict_of_the_job(make_server) -> None:
    """The fingerprint is checked again once the apply holds the system: a settings update
    accepted before the apply, but committed only after the apply's request-time check, makes
    the apply end CONFLICT with nothing changed (the check at request time alone passes it)."""
    server = make_server().start()
    point = (await create_and_wait(server, "a"))["restorePoint"]["id"]
    await update_settings(server, "audio", {"masterVolume": 4.0})
    seen = (await execute(server, PREVIEW_SUMMARY, id=point))["applyPreview"]["fingerprint"]
    # Two requests waiting inside the server have no API to show it: the test reads the
    # services' own counters (an update past its writable check; a submission under way).
    backend = server._app.state.backend
    services = backend.services
    points_before = await restore_points(server)

    with module_row_locked(server.fresh_database().url, "audio"):
        # An update accepted (past its writable check) that cannot commit yet ...
        update = asyncio.create_task(update_settings(server, "audio", {"masterVolume": 5.0}))
        await wait_until(lambda: services.settings._writes_in_flight == 1)
        # ... and the apply, whose request-time check still sees the previewed configuration.
        started = asyncio.create_task(apply(server, point, fingerprint=seen, safety=False))
        await wait_until(lambda: started.done() or backend.runner._submit_lock.locked())
        assert not update.done()
    assert (await update)["userErrors"] == []
    payload = await started
    assert payload["userErrors"] == [], payload  # accepted: the change had not landed yet
    final = await wait_for_operation(server, payload["operation"]["id"])
    assert final["status"] == "FAILED" and final["error"]["code"] == "CONFLICT", final
    assert "changed since the preview" in final["error"]["message"]
    # Nothing was changed: the update stands, and no restore point was made or removed.
    assert (await modules(server))["audio"]["masterVolume"] == 5.0
    assert await restore_points(server) == points_before
    assert (await system(server))["state"] == "RUNNING"
