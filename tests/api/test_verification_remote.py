"""verifyBackups reads remote copies back: a folder location and an S3 bucket (a real SeaweedFS).
A copy changed, replaced or deleted there is DAMAGED or MISSING; a location that cannot be
reached is not verified this time, the reason in the log, and its copies keep what they were."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.api.test_locations import upload
from tests.api.test_verification import HEALTH, POINT, blob_path, entry, flip, verify
from tests.support.api import create_and_wait, execute
from tests.support.config_file import Bucket, Share, write_config
from tests.support.in_process import InProcessServer
from tests.support.local_copies import exported_copy
from tests.support.seaweedfs import SeaweedFS

REMOTE = "{ locations { name copies { id fileName verification { state problems } } } }"


async def remote_copies(server: InProcessServer, location: str) -> dict[str, dict[str, Any]]:
    """The copies at a location, by file name."""
    found = {loc["name"]: loc for loc in (await execute(server, REMOTE))["locations"]}
    return {copy["fileName"]: copy for copy in found[location]["copies"]}


async def uploaded(server: InProcessServer, location: str, label: str) -> tuple[str, str]:
    """A restore point exported and uploaded to `location`: (restore point id, the copy's file name there)."""
    point_id = (await create_and_wait(server, label))["restorePoint"]["id"]
    copy = await exported_copy(server, point_id)
    final = await upload(server, copy["id"], location)
    assert final["status"] == "SUCCEEDED", final
    return point_id, copy["fileName"]


async def test_copies_in_a_folder_location_changed_deleted_or_unreachable(
    make_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    share = tmp_path / "share"
    config = write_config(tmp_path, Share(share))
    server = make_server(BACKUPS_CONFIG=str(config)).start()
    _, first = await uploaded(server, "share", "first")
    (tmp_path / "site" / "page.html").write_text("<h1>second</h1>")
    _, second = await uploaded(server, "share", "second")

    assert all(c["verification"] is None for c in (await remote_copies(server, "share")).values())
    await verify(server)
    copies = await remote_copies(server, "share")
    assert {name: c["verification"]["state"] for name, c in copies.items()} == {first: "OK", second: "OK"}

    flip(share / first, (share / first).stat().st_size // 2)
    (share / second).unlink()
    final = await verify(server)
    copies = await remote_copies(server, "share")
    assert copies[first]["verification"]["state"] == "DAMAGED", copies
    assert copies[first]["verification"]["problems"][0].startswith(f"{first}: ")
    assert any(f"Remote copy {second} at 'share' is MISSING" in line for line in final["log"]), final["log"]
    health = (await execute(server, HEALTH))["backupHealth"]
    assert health["status"] == "CRITICAL"
    assert {"subjectKind": "REMOTE_COPY", "subjectId": copies[first]["id"]} in health["issues"]

    share.rename(tmp_path / "unmounted")
    final = await verify(server)
    assert any("Remote copies at 'share' were not verified this time" in line for line in final["log"]), final["log"]
    (tmp_path / "unmounted").rename(share)
    copies = await remote_copies(server, "share")
    assert copies[first]["verification"]["state"] == "DAMAGED", "unchanged: not verified this time, not called worse"


async def test_copies_in_a_bucket_replaced_or_deleted(
    seaweedfs: SeaweedFS, make_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    bucket = seaweedfs.new_bucket()
    config = write_config(tmp_path, Bucket(seaweedfs.endpoint, bucket))
    server = make_server(BACKUPS_CONFIG=str(config), BACKUPS_LOCATION_PART_BYTES=str(5 * 1024**2)).start()
    _, first = await uploaded(server, "bucket", "first")
    (tmp_path / "site" / "page.html").write_text("<h1>second</h1>")
    _, second = await uploaded(server, "bucket", "second")
    await verify(server)
    copies = await remote_copies(server, "bucket")
    assert {name: c["verification"]["state"] for name, c in copies.items()} == {first: "OK", second: "OK"}

    client = seaweedfs.client()
    body = client.get_object(Bucket=bucket, Key=f"backups/{first}")["Body"].read()
    changed = bytearray(body)
    changed[len(changed) // 2] ^= 0x01
    client.put_object(Bucket=bucket, Key=f"backups/{first}", Body=bytes(changed))  # no metadata: a stranger's write
    client.delete_object(Bucket=bucket, Key=f"backups/{second}")

    final = await verify(server)
    copies = await remote_copies(server, "bucket")
    found = copies[first]["verification"]
    assert found["state"] == "DAMAGED" and "last verified" in found["problems"][0], found
    assert any(f"Remote copy {second} at 'bucket' is MISSING" in line for line in final["log"]), final["log"]

    # A copy deleted on purpose (deleteRemoteCopy) is not missing: its verification goes with it.
    deleted = await execute(
        server,
        "mutation($id: ID!) { deleteRemoteCopy(id: $id) { deletedId userErrors { code } } }",
        id=copies[first]["id"],
    )
    assert deleted["deleteRemoteCopy"]["deletedId"] == copies[first]["id"], deleted
    health = (await execute(server, HEALTH))["backupHealth"]
    assert [issue["subjectKind"] for issue in health["issues"]] == ["REMOTE_COPY"], "only the missing one is left"
    final = await verify(server)
    assert not any(first in line and "MISSING" in line for line in final["log"]), final["log"]


async def test_a_blob_is_repaired_from_a_copy_at_a_location(
    make_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    config = write_config(tmp_path, Share(tmp_path / "share"))
    (tmp_path / "site" / "big.bin").write_bytes(os.urandom(2 * 1024 * 1024))  # a loose blob
    server = make_server(BACKUPS_CONFIG=str(config)).start()
    point_id, name = await uploaded(server, "share", "a")
    (server.data_dir / "local-copies" / name).unlink()  # the only good copy is at the location
    big = await entry(server, point_id, "big.bin")
    path = blob_path(server, big["sha256"])
    good = path.read_bytes()
    flip(path, 7)

    final = await verify(server, [point_id])
    found = (await execute(server, POINT, id=point_id))["restorePoint"]["verification"]
    assert found["state"] == "OK" and found["repaired"] == 1, (found, final["log"])
    assert path.read_bytes() == good
    assert any(f"repaired from remote copy {name} at 'share'" in line for line in final["log"]), final["log"]
    assert not [p for p in (server.data_dir / "local-copies").iterdir() if p.name.startswith(".")], "temp removed"
