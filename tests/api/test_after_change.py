"""After-change restore points (afterChangeQuietSeconds) through the real server: settings
changes seen at once, a folder seen through inotify, a database by the periodic fingerprint
check. The quiet period passes on the test clock (moved forward), never by sleeping it."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.api import create_and_wait, execute, update_settings, wait_for_operation
from tests.support.apply import start_apply
from tests.support.in_process import InProcessServer
from tests.support.schedules import (
    CREATE,
    LIST,
    UPDATE,
    create_schedule,
    eventually,
    far_off_cron,
    operations_by,
    settled,
)

QUIET = 600
POINT = "query($id: ID!) { restorePoint(id: $id) { origin createdBy schedule { name } } }"
COUNT = "{ restorePoints(first: 1) { totalCount } }"


def server_with(make_server: Callable[..., InProcessServer], tmp_path: Path, **env: str) -> InProcessServer:
    site = tmp_path / "site"
    site.mkdir()
    (site / "app.conf").write_text("volume = 3\n")
    database = tmp_path / "app.db"
    with sqlite3.connect(database) as db:
        db.execute("CREATE TABLE devices (id INTEGER PRIMARY KEY, name TEXT)")
        db.execute("INSERT INTO devices (name) VALUES ('proj-1')")
    config = tmp_path / "backups.toml"
    config.write_text(
        '[[sources]]\nname = "settings"\nkind = "settings"\n\n'
        f'[[sources]]\nname = "site"\nkind = "directory"\npath = "{site}"\n\n'
        f'[[sources]]\nname = "appdb"\nkind = "database"\nurl = "sqlite:///{database}"\n'
    )
    return make_server(**{"BACKUPS_CONFIG": str(config), "BACKUPS_SCHEDULER_POLL_SECONDS": "0.05", **env}).start()


async def quiet(seconds: float = 0.4) -> None:
    """Give the scheduler several polls in which it could (wrongly) start something."""
    await asyncio.sleep(seconds)


async def point_count(server: InProcessServer) -> int:
    return (await execute(server, COUNT))["restorePoints"]["totalCount"]


def log_of(op: dict[str, Any]) -> str:
    return "\n".join(line["message"] for line in op["log"])


async def fired_after_advancing(server: InProcessServer, name: str, count: int) -> list[dict[str, Any]]:
    """Move the clock past the quiet period until the schedule has started `count` runs, all done
    (a change noticed after one advance is quiet only after the next)."""

    async def check() -> list[dict[str, Any]] | None:
        ops = await operations_by(server, name)
        if len(ops) >= count and all(op["done"] for op in ops):
            return ops
        server.clock.advance(QUIET + 1)
        return None

    return await eventually(check, timeout=30, interval=0.1)


async def test_a_burst_of_fifty_settings_changes_makes_one_restore_point(
    make_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    server = server_with(make_server, tmp_path)
    await create_and_wait(server, "baseline")
    made = await create_schedule(server, name="on-change", afterChangeQuietSeconds=QUIET)
    assert made["cron"] is None and made["nextRunAt"] is None
    assert made["afterChangeQuietSeconds"] == QUIET
    for volume in range(50):
        assert (await update_settings(server, "audio", {"masterVolume": volume}))["userErrors"] == []
    server.clock.advance(QUIET / 2)
    await quiet()
    assert await operations_by(server, "on-change") == [], "not quiet long enough yet"

    server.clock.advance(QUIET / 2 + 1)
    ops = await settled(server, "on-change", 1)
    run = ops[0]
    assert run["kind"] == "CREATE_RESTORE_POINT" and run["status"] == "SUCCEEDED"
    assert run["requestedBy"] == "schedule:on-change"
    assert "triggered by a change of the configuration (the last one seen by settings module 'audio'" in log_of(run)
    point = (await execute(server, POINT, id=run["restorePoint"]["id"]))["restorePoint"]
    assert point == {"origin": "SCHEDULED", "createdBy": "schedule:on-change", "schedule": {"name": "on-change"}}

    # No change since: however long it stays quiet, no further restore point.
    for _ in range(3):
        server.clock.advance(QUIET + 1)
        await quiet(0.2)
    assert len(await operations_by(server, "on-change")) == 1
    assert await point_count(server) == 2


async def test_a_change_undone_makes_none_and_no_change_makes_none(
    make_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    server = server_with(make_server, tmp_path)
    await create_schedule(server, name="on-change", afterChangeQuietSeconds=QUIET)
    server.clock.advance(QUIET + 1)
    await quiet()
    assert await operations_by(server, "on-change") == [], "creating it is no change"

    await create_and_wait(server, "baseline")
    assert (await update_settings(server, "audio", {"masterVolume": 3}))["userErrors"] == []
    assert (await update_settings(server, "audio", {"masterVolume": -12.5}))["userErrors"] == []  # back again
    server.clock.advance(QUIET + 1)
    await quiet()
    assert await operations_by(server, "on-change") == [], "the configuration is the newest restore point's"

    # The scheduler was looking all along: a change that stays makes one.
    assert (await update_settings(server, "audio", {"masterVolume": 4}))["userErrors"] == []
    server.clock.advance(QUIET + 1)
    assert len(await settled(server, "on-change", 1)) == 1
    assert await point_count(server) == 2


async def test_a_folder_change_is_seen_through_the_file_watch(
    make_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    # The periodic check a day apart: only the watch can have seen it within the test.
    server = server_with(make_server, tmp_path, BACKUPS_CHANGE_CHECK_SECONDS="86400")
    await create_and_wait(server, "baseline")
    # The clock this test moves forward must not bring the cron's time round as well.
    await create_schedule(server, name="on-change", cron=far_off_cron(), afterChangeQuietSeconds=QUIET)
    await eventually(lambda: _watching(server))
    for number in range(20):
        (tmp_path / "site" / f"new-{number}.conf").write_text(f"n = {number}\n")
    # inotify's events come on their own time: advanced before they arrive, the clock would make
    # the start-up look (always one change) quiet first, and that run would be the one logged.
    await eventually(lambda: _seen_by_the_watch(server))
    ops = await fired_after_advancing(server, "on-change", 1)
    assert ops[0]["status"] == "SUCCEEDED"
    assert "seen by folder source 'site'" in log_of(ops[0])
    await quiet()
    assert len(await operations_by(server, "on-change")) == 1, "twenty files in a burst: one restore point"


async def test_the_watch_follows_a_folder_an_apply_swapped_in(
    make_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    """An apply replaces a folder source's whole folder with the staged one: the watch moves
    to the new folder, so a change made there afterwards is still seen at once."""
    site = tmp_path / "site"
    server = server_with(make_server, tmp_path, BACKUPS_CHANGE_CHECK_SECONDS="86400")
    point = (await create_and_wait(server, "baseline"))["restorePoint"]
    await create_schedule(server, name="on-change", cron=far_off_cron(), afterChangeQuietSeconds=QUIET)
    await eventually(lambda: _watching(server))
    changes = server._app.state.backend.services.scheduler.changes  # the watch has no API
    before = changes.watched_inodes["site"]
    (site / "app.conf").write_text("volume = 11\n")
    applied = await wait_for_operation(server, (await start_apply(server, point["id"], safety=False))["id"])
    assert applied["status"] == "SUCCEEDED", applied
    assert (site / "app.conf").read_text() == "volume = 3\n" and site.stat().st_ino != before  # swapped

    async def on_the_new_folder() -> bool:
        return changes.watched_inodes["site"] == site.stat().st_ino

    await eventually(on_the_new_folder)
    seen = changes.version
    (site / "after-the-apply.conf").write_text("new = true\n")

    async def seen_there() -> bool:
        return changes.version > seen and changes.seen_by == "folder source 'site'"

    await eventually(seen_there)


async def _watching(server: InProcessServer) -> bool:
    """True once the schedule's first look has set up the folder watch (the server's own state)."""
    return bool(server._app.state.backend.services.scheduler.changes.watching)  # the watch has no API


async def _seen_by_the_watch(server: InProcessServer) -> bool:
    return server._app.state.backend.services.scheduler.changes.seen_by == "folder source 'site'"


async def _checked(server: InProcessServer) -> bool:
    return server._app.state.backend.services.scheduler.changes.checked_at is not None


async def test_a_database_change_is_seen_by_the_periodic_check(
    make_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    server = server_with(make_server, tmp_path, BACKUPS_CHANGE_CHECK_SECONDS="30")
    await create_and_wait(server, "baseline")
    await create_schedule(server, name="on-change", afterChangeQuietSeconds=QUIET)
    await eventually(lambda: _checked(server))  # the first periodic check took the fingerprint it compares with
    with sqlite3.connect(tmp_path / "app.db") as db:
        db.execute("INSERT INTO devices (name) VALUES ('proj-2')")
    ops = await fired_after_advancing(server, "on-change", 1)
    assert ops[0]["status"] == "SUCCEEDED"
    assert "seen by the periodic fingerprint check" in log_of(ops[0])


async def test_bad_quiet_seconds_are_refused_and_nothing_changes(
    make_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    server = server_with(make_server, tmp_path)
    kept = await create_schedule(server, name="kept", afterChangeQuietSeconds=60)
    both = await create_schedule(server, name="both", cron="0 1 * * *", afterChangeQuietSeconds=7 * 24 * 3600)
    assert both["nextRunAt"] is not None
    before = (await execute(server, LIST))["schedules"]
    for bad in (0, -1, 7 * 24 * 3600 + 1, 2**31 - 1):
        created = await execute(server, CREATE, input={"name": "fresh", "afterChangeQuietSeconds": bad})
        assert created["createSchedule"]["schedule"] is None
        errors = created["createSchedule"]["userErrors"]
        assert [(e["code"], e["field"]) for e in errors] == [("INVALID_INPUT", "afterChangeQuietSeconds")], bad
        assert "between 1 and 604800" in errors[0]["message"]
        updated = await execute(server, UPDATE, id=kept["id"], input={"name": "kept", "afterChangeQuietSeconds": bad})
        errors = updated["updateSchedule"]["userErrors"]
        assert [(e["code"], e["field"]) for e in errors] == [("INVALID_INPUT", "afterChangeQuietSeconds")], bad
    neither = (await execute(server, CREATE, input={"name": "fresh"}))["createSchedule"]
    assert [(e["code"], e["field"]) for e in neither["userErrors"]] == [("INVALID_INPUT", "cron")]
    assert (await execute(server, LIST))["schedules"] == before


async def test_a_change_made_while_paused_does_not_run_it_on_resume(
    make_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    server = server_with(make_server, tmp_path)
    await create_and_wait(server, "baseline")
    made = await create_schedule(server, name="on-change", afterChangeQuietSeconds=QUIET)
    await eventually(lambda: _watching(server))  # it has been looked at while enabled
    paused = await execute(server, UPDATE, id=made["id"], input={"name": "on-change", "enabled": False})
    assert paused["updateSchedule"]["userErrors"] == []
    assert (await update_settings(server, "audio", {"masterVolume": 7}))["userErrors"] == []
    server.clock.advance(QUIET + 1)
    await quiet()
    resumed = await execute(server, UPDATE, id=made["id"], input={"name": "on-change", "enabled": True})
    assert resumed["updateSchedule"]["userErrors"] == []
    server.clock.advance(QUIET + 1)
    await quiet()
    assert await operations_by(server, "on-change") == [], "resuming never runs it at once"

    assert (await update_settings(server, "audio", {"masterVolume": 8}))["userErrors"] == []
    assert len(await fired_after_advancing(server, "on-change", 1)) == 1


# -- a change made soon after the schedule starts wanting changes ---------------------------
# The scheduler polls once an hour in these tests, so nothing depends on where in its poll the
# schedule was saved: a change made right after must be counted (not taken as seen at the next
# poll), and its run must start once the quiet period has passed (not at the next poll). The
# quiet second passes on the real clock: these tests wait for the run, never a fixed time.

SOON = 1
RARE_POLLS = {"BACKUPS_SCHEDULER_POLL_SECONDS": "3600"}


async def made_after_the_change(server: InProcessServer, name: str) -> None:
    """Change a setting now; the schedule makes one restore point of its own after it."""
    assert (await update_settings(server, "audio", {"masterVolume": 9}))["userErrors"] == []
    ops = await settled(server, name, 1, timeout=120)  # generous: a loaded machine makes the capture slow
    assert [op["status"] for op in ops] == ["SUCCEEDED"], ops
    assert "triggered by a change of the configuration" in log_of(ops[0])
    point = (await execute(server, POINT, id=ops[0]["restorePoint"]["id"]))["restorePoint"]
    assert point["schedule"] == {"name": name}


async def test_a_change_right_after_create_schedule_is_backed_up(
    make_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    server = server_with(make_server, tmp_path, **RARE_POLLS)
    await create_and_wait(server, "baseline")
    await create_schedule(server, name="on-change", cron=None, afterChangeQuietSeconds=SOON)
    await made_after_the_change(server, "on-change")


async def test_a_change_right_after_update_schedule_gives_it_after_changes_is_backed_up(
    make_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    server = server_with(make_server, tmp_path, **RARE_POLLS)
    await create_and_wait(server, "baseline")
    made = await create_schedule(server, name="nightly", cron=far_off_cron())
    updated = await execute(server, UPDATE, id=made["id"], input={"name": "nightly", "afterChangeQuietSeconds": SOON})
    assert updated["updateSchedule"]["userErrors"] == []
    await made_after_the_change(server, "nightly")


async def test_a_change_right_after_a_resume_is_backed_up(
    make_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    server = server_with(make_server, tmp_path, **RARE_POLLS)
    await create_and_wait(server, "baseline")
    made = await create_schedule(server, name="on-change", enabled=False, afterChangeQuietSeconds=SOON)
    resumed = await execute(server, UPDATE, id=made["id"], input={"name": "on-change", "enabled": True})
    assert resumed["updateSchedule"]["userErrors"] == []
    await made_after_the_change(server, "on-change")
