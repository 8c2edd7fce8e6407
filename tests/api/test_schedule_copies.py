"""A schedule's copyToLocations through the real server, against a real folder location and a
real SeaweedFS: each run's restore point reaches both, keepLast prunes only the schedule's own
copies there, an unreachable location keeps the restore point but makes health WARNING and is
named in the log, and a bad location name is refused without changing anything."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from tests.support.api import create_and_wait, execute, wait_for_operation
from tests.support.config_file import Bucket, Share, write_config
from tests.support.in_process import InProcessServer
from tests.support.schedules import CREATE, LIST, RUN, UPDATE, create_schedule, far_off_cron
from tests.support.seaweedfs import SeaweedFS
from tests.support.server_process import free_port

HEALTH = "{ backupHealth { status problems } }"
LOG = "query($id: ID!) { operation(id: $id) { status restorePoint { id } log { level message } } }"
POINT = "query($id: ID!) { restorePoint(id: $id) { id } }"
OP = "operation { id status } userErrors { code message field }"


def start(make_server: Callable[..., InProcessServer], config: Path) -> InProcessServer:
    return make_server(BACKUPS_CONFIG=str(config), BACKUPS_LOCATION_PART_BYTES=str(5 * 1024**2)).start()


async def run_schedule(server: InProcessServer, schedule_id: str) -> dict:
    """runSchedule, followed to its end: the operation's status, restore point and log."""
    payload = (await execute(server, RUN, id=schedule_id))["runSchedule"]
    assert payload["userErrors"] == [], payload
    final = await wait_for_operation(server, payload["operation"]["id"])
    assert final["done"], final
    return (await execute(server, LOG, id=final["id"]))["operation"]


def objects(store: SeaweedFS, bucket: str) -> list[str]:
    answer = store.client().list_objects_v2(Bucket=bucket)
    return sorted(item["Key"] for item in answer.get("Contents", []))


def pending_uploads(store: SeaweedFS, bucket: str) -> list[str]:
    return [u["Key"] for u in store.client().list_multipart_uploads(Bucket=bucket).get("Uploads", [])]


def local_files(server: InProcessServer) -> list[str]:
    """Every file in the local copies folder, its staging subfolder included."""
    root = server.data_dir / "local-copies"
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())


async def copies_at(server: InProcessServer, name: str) -> list[dict]:
    query = "{ locations { name reachable problem copies { fileName restorePointId } } }"
    [found] = [loc for loc in (await execute(server, query))["locations"] if loc["name"] == name]
    assert found["reachable"], found
    return found["copies"]


def messages(op: dict, level: str | None = None) -> list[str]:
    return [line["message"] for line in op["log"] if level is None or line["level"] == level]


async def test_each_run_reaches_both_locations_and_keep_last_prunes_only_its_own(
    seaweedfs: SeaweedFS, make_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    bucket, share = seaweedfs.new_bucket(), tmp_path / "share"
    share.mkdir()
    # Put there by another server (or by hand): never the schedule's to prune.
    (share / "from-another-server.zip").write_bytes(b"not ours")
    server = start(
        make_server,
        write_config(
            tmp_path,
            Bucket(seaweedfs.endpoint, bucket, prefix="nightly/", encrypt=None, keep_last=2),
            Share(share, keep_last=2),
        ),
    )

    # A copy uploaded by hand, of a manual restore point: left alone by keepLast too.
    manual = (await create_and_wait(server, "by hand"))["restorePoint"]["id"]
    exported = await execute(
        server, f"mutation($id: ID!) {{ exportRestorePoint(restorePointId: $id) {{ {OP} }} }}", id=manual
    )
    export_op = await wait_for_operation(server, exported["exportRestorePoint"]["operation"]["id"])
    local = await execute(server, "query($id: ID!) { operation(id: $id) { localCopy { id } } }", id=export_op["id"])
    hand = await execute(
        server,
        f'mutation($c: ID!) {{ uploadToLocation(localCopyId: $c, location: "bucket") {{ {OP} }} }}',
        c=local["operation"]["localCopy"]["id"],
    )
    assert (await wait_for_operation(server, hand["uploadToLocation"]["operation"]["id"]))["status"] == "SUCCEEDED"
    await execute(
        server,
        "mutation($id: ID!) { deleteLocalCopy(id: $id) { deletedId } }",
        id=local["operation"]["localCopy"]["id"],
    )

    schedule = await create_schedule(server, name="nightly", cron=far_off_cron(), copyToLocations=["bucket", "share"])
    points = []
    for number in range(4):
        op = await run_schedule(server, schedule["id"])
        assert op["status"] == "SUCCEEDED", op
        points.append(op["restorePoint"]["id"])
        log = messages(op)
        assert any("Uploaded to location 'bucket' as" in m for m in log), log
        assert any("Uploaded to location 'share' as" in m for m in log), log
        assert "Copied to 2 of 2 locations." in log, log
        deleted = [m for m in log if m.startswith("Deleted ") and "beyond keepLast=2" in m]
        assert len(deleted) == (2 if number >= 2 else 0), log  # one per location from the third run on
        assert not messages(op, "WARNING"), op
        assert local_files(server) == []  # the staging copy is removed after the uploads

    # Each location: the two newest runs, plus what was there not by this schedule.
    in_bucket = await copies_at(server, "bucket")
    assert sorted(c["restorePointId"] for c in in_bucket) == sorted([manual, *points[-2:]])
    assert len(objects(seaweedfs, bucket)) == 3 and pending_uploads(seaweedfs, bucket) == []
    in_share = await copies_at(server, "share")
    assert sorted(str(c["restorePointId"]) for c in in_share) == sorted(["None", *points[-2:]])
    assert (share / "from-another-server.zip").read_bytes() == b"not ours"
    assert not [name for name in os.listdir(share) if name.startswith(".")]  # no temp files left
    # The restore points themselves are the schedule's retention's business, not the locations'.
    for point in points:
        assert (await execute(server, POINT, id=point))["restorePoint"] is not None
    assert (await execute(server, HEALTH))["backupHealth"] == {"status": "OK", "problems": []}


async def test_an_unreachable_location_keeps_the_restore_point_and_warns_until_a_run_copies_there(
    make_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    share = tmp_path / "share"
    share.mkdir()
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    server = start(
        make_server,
        write_config(tmp_path, Bucket(closed, "offsite", prefix="nightly/", encrypt=None), Share(share, keep_last=1)),
    )
    schedule = await create_schedule(server, name="nightly", cron=far_off_cron(), copyToLocations=["share", "bucket"])
    shutil.rmtree(share)  # the disk is unplugged

    op = await run_schedule(server, schedule["id"])
    assert op["status"] == "SUCCEEDED", op  # a failed upload does not fail the restore point
    assert (await execute(server, POINT, id=op["restorePoint"]["id"]))["restorePoint"] is not None
    warnings = messages(op, "WARNING")
    assert any(m.startswith("Upload to location 'share' failed:") and "does not exist" in m for m in warnings), warnings
    assert any(m.startswith("Upload to location 'bucket' failed:") and closed in m for m in warnings), warnings
    assert any("Copied to 0 of 2 locations; problems at: share, bucket" in m for m in warnings), warnings
    assert local_files(server) == [] and not share.exists()  # nothing left behind
    health = (await execute(server, HEALTH))["backupHealth"]
    assert health["status"] == "WARNING", health
    assert any("location 'share'" in p and "does not exist" in p for p in health["problems"]), health
    assert any("location 'bucket'" in p and closed in p for p in health["problems"]), health

    share.mkdir()  # the disk is back: the next run copies there; the bucket still warns
    op = await run_schedule(server, schedule["id"])
    assert op["status"] == "SUCCEEDED", op
    assert [c["restorePointId"] for c in await copies_at(server, "share")] == [op["restorePoint"]["id"]]
    health = (await execute(server, HEALTH))["backupHealth"]
    assert health["status"] == "WARNING" and len(health["problems"]) == 1, health
    assert "location 'bucket'" in health["problems"][0], health

    # Copying only where it works: health is OK again.
    changed = await execute(server, UPDATE, id=schedule["id"], input={"name": "nightly", "copyToLocations": ["share"]})
    assert changed["updateSchedule"]["userErrors"] == [], changed
    op = await run_schedule(server, schedule["id"])
    assert op["status"] == "SUCCEEDED" and not messages(op, "WARNING"), op
    assert (await execute(server, HEALTH))["backupHealth"] == {"status": "OK", "problems": []}
    assert [c["restorePointId"] for c in await copies_at(server, "share")] == [op["restorePoint"]["id"]]  # keepLast=1


async def test_refused_credentials_leave_nothing_in_the_bucket(
    seaweedfs: SeaweedFS, make_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    bucket, share = seaweedfs.new_bucket(), tmp_path / "share"
    share.mkdir()
    config = write_config(
        tmp_path,
        Bucket(seaweedfs.endpoint, bucket, prefix="nightly/", encrypt=None, keep_last=1),
        Share(share),
        secret="not-the-secret",
    )
    server = start(make_server, config)
    schedule = await create_schedule(server, name="nightly", cron=far_off_cron(), copyToLocations=["bucket"])
    op = await run_schedule(server, schedule["id"])
    assert op["status"] == "SUCCEEDED", op
    assert (await execute(server, POINT, id=op["restorePoint"]["id"]))["restorePoint"] is not None
    warnings = messages(op, "WARNING")
    assert any(m.startswith("Upload to location 'bucket' failed:") and "refuses the credentials" in m for m in warnings)
    assert objects(seaweedfs, bucket) == [] and pending_uploads(seaweedfs, bucket) == []
    assert local_files(server) == []
    health = (await execute(server, HEALTH))["backupHealth"]
    assert health["status"] == "WARNING" and "location 'bucket'" in health["problems"][0], health


async def test_bad_location_names_are_refused_and_change_nothing(
    make_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    share = tmp_path / "share"
    share.mkdir()
    server = start(
        make_server,
        write_config(tmp_path, Bucket("http://127.0.0.1:9", "offsite", prefix="nightly/", encrypt=None), Share(share)),
    )
    kept = await create_schedule(server, name="kept", cron=far_off_cron(), copyToLocations=["share"])
    assert kept["id"]
    before = (await execute(server, LIST))["schedules"]
    for names, words in [
        (["offsite"], "no location 'offsite' is configured (configured locations: 'bucket', 'share')"),
        (["share", "Share"], "no location 'Share' is configured"),
        (["share", "bucket", "share"], "location 'share' is named twice"),
        (["local"], "'local' (the local copies folder) is not a place to copy to"),
        ([""], "no location '' is configured"),
    ]:
        for mutation, variables in [
            (CREATE, {"input": {"name": "fresh", "cron": "0 1 * * *", "copyToLocations": names}}),
            (UPDATE, {"id": kept["id"], "input": {"name": "kept", "copyToLocations": names}}),
        ]:
            payload = next(iter((await execute(server, mutation, **variables)).values()))
            assert payload["schedule"] is None, (names, payload)
            [error] = payload["userErrors"]
            assert (error["code"], error["field"]) == ("INVALID_INPUT", "copyToLocations"), error
            assert words in error["message"], error
    assert (await execute(server, LIST))["schedules"] == before
    stored = await execute(server, "query($id: ID!) { schedule(id: $id) { copyToLocations } }", id=kept["id"])
    assert stored["schedule"]["copyToLocations"] == ["share"]
    assert os.listdir(share) == []
