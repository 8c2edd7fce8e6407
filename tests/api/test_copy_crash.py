"""SIGKILL while a copy is made: no full-size file is left that nothing knows, and an
operation's status agrees with the disk.

- A schedule's run killed while it uploads to a location (held there by the test-only
  BACKUPS_TEST_PAUSE_AT=uploading): its staging copy is gone after the restart, was never
  listed as a local copy, and the run is INTERRUPTED.
- An export or a fetch killed after it named its copy, before its end was stored
  (BACKUPS_TEST_PAUSE_AT=copy-named): the restart finds the named copy and ends the operation
  SUCCEEDED with it; the folder holds that one copy, not a second one.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.api import create_and_wait, execute, wait_for_operation
from tests.support.apply import wait_for_pause
from tests.support.schedules import RUN, create_schedule, far_off_cron
from tests.support.server_process import ServerProcess

OP = "operation { id status } userErrors { code message field }"
OPERATION = """query($id: ID!) { operation(id: $id) { status error { code } localCopy { id fileName restorePointId }
    log { message } } }"""
LOCAL_COPIES = "{ localCopies { id fileName restorePointId } }"
SHARE_COPIES = "{ locations { name copies { id fileName restorePointId } } }"


def server_with_share(make: Callable[..., ServerProcess], tmp_path: Path, pause_at: str) -> tuple[ServerProcess, Path]:
    """A server, started, with a folder location 'share', that holds operations at `pause_at`."""
    share = tmp_path / "share"
    share.mkdir()
    config = tmp_path / "backups.toml"
    config.write_text(
        f'[[sources]]\nname = "settings"\nkind = "settings"\n\n[[locations]]\nname = "share"\nkind = "folder"\npath = "{share}"\n'
    )
    return make(BACKUPS_CONFIG=str(config), BACKUPS_TEST_PAUSE_AT=pause_at).start(), share


def files_in(folder: Path) -> list[str]:
    """Every file under `folder`, hidden or in subfolders too, by path relative to it."""
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())


async def restart(proc: ServerProcess) -> None:
    await asyncio.to_thread(proc.kill)
    proc.env_overrides.pop("BACKUPS_TEST_PAUSE_AT")
    await asyncio.to_thread(proc.start)


async def start(proc: ServerProcess, mutation: str, **variables: str) -> str:
    payload = next(iter((await execute(proc, f"mutation($id: ID!) {{ {mutation} {{ {OP} }} }}", **variables)).values()))
    assert payload["userErrors"] == [], payload
    return payload["operation"]["id"]


@pytest.mark.slow
async def test_a_schedule_run_killed_while_uploading_leaves_no_staging_copy(
    make_server_process: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    proc, share = server_with_share(make_server_process, tmp_path, "uploading")
    local = proc.data_dir / "local-copies"
    schedule = await create_schedule(proc, name="offsite", cron=far_off_cron(), copyToLocations=["share"])
    run = (await execute(proc, RUN, id=schedule["id"]))["runSchedule"]
    assert run["userErrors"] == [], run
    op_id = run["operation"]["id"]
    await wait_for_pause(proc, op_id)
    staged = files_in(local)
    assert len(staged) == 1 and staged[0].endswith(".zip"), staged  # the copy to upload, full size
    assert (await execute(proc, LOCAL_COPIES))["localCopies"] == []  # never listed as a user's

    await restart(proc)
    final = await wait_for_operation(proc, op_id)
    assert final["status"] == "INTERRUPTED", final
    assert files_in(local) == [], "the killed run's staging copy was removed at start-up"
    assert (await execute(proc, LOCAL_COPIES))["localCopies"] == []
    assert files_in(share) == []

    # The next run copies as before, and leaves nothing behind either.
    proc_run = (await execute(proc, RUN, id=schedule["id"]))["runSchedule"]
    again = await wait_for_operation(proc, proc_run["operation"]["id"])
    assert again["status"] == "SUCCEEDED", again
    assert files_in(local) == []
    assert len(files_in(share)) == 1


@pytest.mark.slow
async def test_an_export_killed_after_naming_its_copy_ends_succeeded_with_it(
    make_server_process: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    proc, _ = server_with_share(make_server_process, tmp_path, "copy-named")
    local = proc.data_dir / "local-copies"
    point = (await create_and_wait(proc, "before the change"))["restorePoint"]
    op_id = await start(proc, "exportRestorePoint(restorePointId: $id)", id=point["id"])
    await wait_for_pause(proc, op_id)
    [named] = files_in(local)  # named, and the operation's end not stored

    await restart(proc)
    await wait_for_operation(proc, op_id)
    await agrees(proc, op_id, local, named, point["id"])


@pytest.mark.slow
async def test_a_fetch_killed_after_naming_its_copy_ends_succeeded_with_it(
    make_server_process: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    proc, share = server_with_share(make_server_process, tmp_path, "uploading")  # not held yet
    local = proc.data_dir / "local-copies"
    point = (await create_and_wait(proc, "offsite"))["restorePoint"]
    exported = await wait_for_operation(
        proc, await start(proc, "exportRestorePoint(restorePointId: $id)", id=point["id"])
    )
    assert exported["status"] == "SUCCEEDED", exported
    [copy] = (await execute(proc, LOCAL_COPIES))["localCopies"]
    shutil.move(local / copy["fileName"], share / copy["fileName"])  # at the location only
    await asyncio.to_thread(proc.stop)
    proc.env_overrides["BACKUPS_TEST_PAUSE_AT"] = "copy-named"
    await asyncio.to_thread(proc.start)

    [remote] = [loc for loc in (await execute(proc, SHARE_COPIES))["locations"] if loc["name"] == "share"][0]["copies"]
    op_id = await start(proc, "fetchFromLocation(remoteCopyId: $id)", id=remote["id"])
    await wait_for_pause(proc, op_id)
    [named] = files_in(local)

    await restart(proc)
    await wait_for_operation(proc, op_id)
    await agrees(proc, op_id, local, named, point["id"])


async def agrees(proc: ServerProcess, op_id: str, local: Path, named: str, point_id: str) -> None:
    """The operation SUCCEEDED with the copy the disk holds, the only one there, listed once."""
    op = (await execute(proc, OPERATION, id=op_id))["operation"]
    assert op["status"] == "SUCCEEDED", op
    assert op["localCopy"] is not None and op["localCopy"]["fileName"] == named, op
    assert op["localCopy"]["restorePointId"] == point_id
    assert any("before storing this operation's end" in line["message"] for line in op["log"]), op["log"]
    assert files_in(local) == [named]
    listed = (await execute(proc, LOCAL_COPIES))["localCopies"]
    assert [c["fileName"] for c in listed] == [named]
    assert not [name for name in os.listdir(local) if name.endswith(("-2.zip", ".partial"))]
