"""BACKUPS_SERVER_NAME: in `system`, in each copy's manifest and file name, as `serverName` on
local and remote copies (so a bucket or a share used by many servers can be told apart and
filtered), and on /metrics; copies made before names still list and import; a bad name stops
the start with one line."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.api import create_and_wait, execute, wait_for_operation
from tests.support.archives import build, take_apart
from tests.support.config_file import Bucket, Share, write_config
from tests.support.in_process import InProcessServer
from tests.support.local_copies import exported_copy
from tests.support.seaweedfs import SeaweedFS
from tests.support.server_process import ROOT, START_TIMEOUT, ServerProcess

NAMED = "Hall B · rack 2"
OP = "operation { id status } userErrors { code message field }"
COPIES = "query($s: String) { localCopies(serverName: $s) { id fileName serverName problem restorePointId } }"
LOCATIONS = """query($s: String) { locations { name copies(serverName: $s) { fileName serverName restorePointId } } }"""
UPLOAD = f"mutation($c: ID!, $l: String!) {{ uploadToLocation(localCopyId: $c, location: $l) {{ {OP} }} }}"
IMPORT = f"mutation($id: ID!) {{ importLocalCopy(localCopyId: $id) {{ {OP} }} }}"


async def run(server: InProcessServer, mutation: str, **variables: object) -> dict:
    payload = next(iter((await execute(server, mutation, **variables)).values()))
    assert payload["userErrors"] == [], payload
    return await wait_for_operation(server, payload["operation"]["id"])


async def test_system_and_metrics_name_the_server(make_server: Callable[..., InProcessServer]) -> None:
    default = make_server("default").start()
    assert (await execute(default, "{ system { serverName } }"))["system"]["serverName"] == socket.gethostname()
    named = make_server("named", BACKUPS_SERVER_NAME=NAMED, BACKUPS_METRICS_PUBLIC="1").start()
    assert (await execute(named, "{ system { serverName } }"))["system"]["serverName"] == NAMED
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"{named.url}/metrics")).text
    info = [s for f in text_string_to_metric_families(text) for s in f.samples if s.name == "backups_server_info"]
    assert [(s.labels, s.value) for s in info] == [({"server_name": NAMED}, 1.0)]


async def test_a_copy_carries_the_name_of_the_server_that_made_it(
    make_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    maker = make_server("maker", BACKUPS_SERVER_NAME=NAMED).start()
    point = (await create_and_wait(maker, "nightly"))["restorePoint"]
    copy = await exported_copy(maker, point["id"], "id fileName path serverName")
    assert copy["serverName"] == NAMED
    assert "_Hall-B-rack-2_nightly_" in copy["fileName"], copy["fileName"]
    with zipfile.ZipFile(copy["path"]) as archive:
        assert json.loads(archive.read("manifest.json"))["serverName"] == NAMED
    # An encrypted copy too: its name is read from the manifest decrypted.
    sealed = await exported_copy(maker, point["id"], "id fileName serverName encrypted", encrypt=True)
    assert sealed["encrypted"] and sealed["serverName"] == NAMED and "_Hall-B-rack-2_" in sealed["fileName"]
    assert {c["id"] for c in (await execute(maker, COPIES, s=NAMED))["localCopies"]} == {copy["id"], sealed["id"]}

    # Another server, given that copy: it lists, filters and imports it under its maker's name.
    other = make_server("other", BACKUPS_SERVER_NAME="hall-a").start()
    folder = other.data_dir / "local-copies"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(copy["path"], folder / copy["fileName"])
    listed = (await execute(other, COPIES))["localCopies"]
    assert [(c["fileName"], c["serverName"], c["problem"]) for c in listed] == [(copy["fileName"], NAMED, None)]
    assert (await execute(other, COPIES, s=NAMED))["localCopies"] == listed
    assert (await execute(other, COPIES, s="hall-a"))["localCopies"] == []
    imported = await run(other, IMPORT, id=listed[0]["id"])
    assert imported["status"] == "SUCCEEDED", imported


async def test_copies_made_before_names_still_list_and_import(
    make_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    maker = make_server("maker").start()
    point = (await create_and_wait(maker, "old"))["restorePoint"]
    copy = await exported_copy(maker, point["id"], "id fileName path")
    # As an older server wrote it: no serverName in the manifest, no server in the file name.
    parts = take_apart(Path(copy["path"]))
    del parts.manifest["serverName"]
    other = make_server("other", BACKUPS_SERVER_NAME="hall-a").start()
    folder = other.data_dir / "local-copies"
    folder.mkdir(parents=True, exist_ok=True)
    old_name = f"20250101-030000_old_{point['id'][-8:]}.zip"
    build(parts, folder / old_name)
    listed = (await execute(other, COPIES))["localCopies"]
    assert [(c["fileName"], c["serverName"], c["problem"]) for c in listed] == [(old_name, None, None)]
    assert (await execute(other, COPIES, s="hall-a"))["localCopies"] == []
    assert (await run(other, IMPORT, id=listed[0]["id"]))["status"] == "SUCCEEDED"


@pytest.mark.parametrize("bad", ["", "a/b", "tab\there", "x" * 65, 42])
async def test_a_manifest_with_a_bad_server_name_is_refused_and_nothing_changes(
    make_server: Callable[..., InProcessServer], bad: object
) -> None:
    server = make_server().start()
    point = (await create_and_wait(server, "first"))["restorePoint"]
    copy = await exported_copy(server, point["id"], "id fileName path")
    parts = take_apart(Path(copy["path"]))
    parts.manifest["serverName"] = bad
    build(parts, Path(copy["path"]))
    listed = (await execute(server, COPIES))["localCopies"]
    assert len(listed) == 1 and listed[0]["restorePointId"] is None and listed[0]["serverName"] is None
    assert "serverName" in listed[0]["problem"], listed[0]["problem"]
    refused = (await execute(server, IMPORT, id=listed[0]["id"]))["importLocalCopy"]
    assert refused["operation"] is None and refused["userErrors"][0]["code"] == "INVALID_ARCHIVE"
    count = await execute(server, "{ restorePoints(first: 10) { totalCount } }")
    assert count["restorePoints"]["totalCount"] == 1


@pytest.mark.xdist_group("seaweedfs")
async def test_a_bucket_and_a_share_used_by_two_servers_tell_their_copies_apart(
    seaweedfs: SeaweedFS, make_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    bucket, share = seaweedfs.new_bucket(), tmp_path / "share"
    servers = {}
    for name, folder in (("hall-a", "a"), (NAMED, "b")):
        (tmp_path / folder).mkdir()
        config = write_config(tmp_path / folder, Bucket(seaweedfs.endpoint, bucket), Share(share))
        servers[name] = make_server(f"data-{folder}", BACKUPS_CONFIG=str(config), BACKUPS_SERVER_NAME=name).start()
    for server in servers.values():
        point = (await create_and_wait(server, "nightly"))["restorePoint"]
        copy = await exported_copy(server, point["id"], "id")
        for location in ("bucket", "share"):
            assert (await run(server, UPLOAD, c=copy["id"], l=location))["status"] == "SUCCEEDED"
    reader = servers["hall-a"]
    for location in ("bucket", "share", "local"):
        every = next(loc for loc in (await execute(reader, LOCATIONS))["locations"] if loc["name"] == location)
        if location == "local":  # its own local copies folder: its own copy only
            assert [c["serverName"] for c in every["copies"]] == ["hall-a"], every
            continue
        assert sorted(c["serverName"] for c in every["copies"]) == sorted(["hall-a", NAMED]), every
        for name in servers:
            mine = next(
                loc for loc in (await execute(reader, LOCATIONS, s=name))["locations"] if loc["name"] == location
            )
            assert [c["serverName"] for c in mine["copies"]] == [name], (location, name)
            assert mine["copies"][0]["restorePointId"] is not None


@pytest.mark.parametrize("bad", ["a/b", "x" * 65, " lead"])
def test_a_bad_server_name_stops_the_start_with_one_line(tmp_path: Path, bad: str) -> None:
    env = {**ServerProcess(data_dir=tmp_path / "data").env, "BACKUPS_SERVER_NAME": bad}
    refused = subprocess.run(
        [sys.executable, "-m", "server", "serve"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
    )
    assert refused.returncode == 2, refused.stderr
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("backups: BACKUPS_SERVER_NAME="), refused.stderr
    assert "1 to 64 printable characters" in lines[0]
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").iterdir())
