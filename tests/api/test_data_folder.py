"""The data folder belongs to one server: a second is refused before it touches anything,
folders that overlap are refused at start-up, and what a killed server left is cleared."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.support.api import create_restore_point, execute, wait_for_operation
from tests.support.local_copies import export_names
from tests.support.server_process import ROOT, START_TIMEOUT, ServerProcess, free_port

EXPORT = "mutation($id: ID!) { exportRestorePoint(restorePointId: $id) { operation { id } userErrors { code } } }"
COPY = "query($id: ID!) { operation(id: $id) { status localCopy { fileName } } }"
OPERATION = "query($id: ID!) { operation(id: $id) { status error { code message } } }"
PARTIAL = re.compile(r"\..+\.partial")


def site(tmp_path: Path, files: int = 12) -> Path:
    """A folder source of `files` small files, and the config file naming it."""
    folder = tmp_path / "site"
    folder.mkdir(exist_ok=True)
    for index in range(files):
        (folder / f"file-{index:02}.txt").write_bytes(os.urandom(2000) + f"{index}".encode())
    config = tmp_path / "backups.toml"
    config.write_text(f'[[sources]]\nname = "site"\nkind = "directory"\npath = "{folder}"\n')
    return config


def serve_once(env: dict[str, str], timeout: float = START_TIMEOUT) -> subprocess.CompletedProcess[str]:
    """Run `backups serve` expecting it to refuse to start (it would run until the timeout)."""
    return subprocess.run(
        [sys.executable, "-m", "server", "serve"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def second_server_env(first: ServerProcess, **overrides: str) -> dict[str, str]:
    return {**first.env, "BACKUPS_PORT": str(free_port()), **overrides}


async def test_a_second_server_on_the_same_data_folder_is_refused_and_the_first_carries_on(
    make_server_process: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    first = make_server_process(BACKUPS_CONFIG=str(site(tmp_path)), BACKUPS_TEST_ENTRY_DELAY="0.1").start()
    assert first.process is not None
    running = await create_restore_point(first, "while a second server starts")
    for _ in range(3):  # refused every time, never half-started
        refused = serve_once(second_server_env(first))
        assert refused.returncode == 2, refused.stderr
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1, refused.stderr
        assert lines[0].startswith(f"backups: the data folder {first.data_dir} is in use by another server "), lines
        assert f"pid {first.process.pid} on host " in lines[0] and "server.lock" in lines[0]
    final = await wait_for_operation(first, running["id"])
    assert final["status"] == "SUCCEEDED", final  # not marked INTERRUPTED by the second server
    names = await export_names(first, final["restorePoint"]["id"], "site/")
    assert names == [f"site/file-{index:02}.txt" for index in range(12)]


async def test_a_second_server_on_the_same_database_is_refused_and_the_first_carries_on(
    make_server_process: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    """Another data folder, the same database (the SQLite file, or the PostgreSQL database in
    the PostgreSQL run): the second would mark the first's create INTERRUPTED and collect the
    blobs its restore points need, so it is refused before it touches the database."""
    first = make_server_process(BACKUPS_CONFIG=str(site(tmp_path)), BACKUPS_TEST_ENTRY_DELAY="0.1").start()
    assert first.process is not None
    running = await create_restore_point(first, "while a second server starts")
    other_data = tmp_path / "other-data"
    shown = make_url(first.env["BACKUPS_DATABASE_URL"]).render_as_string(hide_password=True)
    for _ in range(2):
        refused = serve_once(second_server_env(first, BACKUPS_DATA_DIR=str(other_data)))
        assert refused.returncode == 2, refused.stderr
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1, refused.stderr
        assert lines[0].startswith(f"backups: the database {shown} is in use by another server "), lines
        assert f"pid {first.process.pid} on host " in lines[0], lines
    final = await wait_for_operation(first, running["id"])
    assert final["status"] == "SUCCEEDED", final  # not marked INTERRUPTED by the second server
    names = await export_names(first, final["restorePoint"]["id"], "site/")
    assert names == [f"site/file-{index:02}.txt" for index in range(12)]
    first.stop()
    # Once the first has stopped, a server on another data folder may take the database.
    second = make_server_process(
        "other-data", BACKUPS_CONFIG=str(site(tmp_path)), BACKUPS_DATABASE_URL=first.env["BACKUPS_DATABASE_URL"]
    ).start()
    listed = await execute(second.with_token(first.token), "{ restorePoints(first: 5) { edges { node { id } } } }")
    assert [e["node"]["id"] for e in listed["restorePoints"]["edges"]] == [final["restorePoint"]["id"]]


def test_an_unreachable_database_is_one_line(make_server_process: Callable[..., ServerProcess]) -> None:
    server = make_server_process(BACKUPS_DATABASE_URL=f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere")
    refused = serve_once(server.env)
    assert refused.returncode == 2, refused.stderr
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in refused.stderr, refused.stderr
    assert lines[0].startswith("backups: cannot reach the database postgresql://postgres@127.0.0.1:"), lines
    assert not server.data_dir.joinpath("blobs").exists()  # refused before anything was made


async def test_the_token_cli_works_while_the_server_runs(make_server_process: Callable[..., ServerProcess]) -> None:
    server = make_server_process().start()
    token = server.create_token("ops", "viewer")
    response = await execute(server.with_token(token), "{ me { name role } }")
    assert response["me"] == {"name": "ops", "role": "VIEWER"}
    server.cli("token", "revoke", "ops")
    assert "revoked" in server.cli("token", "list").stdout


async def test_the_lock_file_of_a_killed_server_does_not_block_the_next(
    make_server_process: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    first = make_server_process(BACKUPS_CONFIG=str(site(tmp_path))).start()
    assert first.process is not None
    dead_pid = first.process.pid
    point = await create_restore_point(first, "before the kill")
    point = await wait_for_operation(first, point["id"])
    first.kill()
    lock = first.data_dir / "server.lock"
    assert f"pid {dead_pid} " in lock.read_text()  # the file stays; the kernel lock went with the process
    first.start()  # the same data folder and database, a new process
    assert first.process.pid != dead_pid and f"pid {first.process.pid} " in lock.read_text()
    assert await export_names(first, point["restorePoint"]["id"], "site/") == [
        f"site/file-{i:02}.txt" for i in range(12)
    ]


# (source folder, local copies folder, the two folders the line names): relative to
# tmp_path; the data folder is "data".
OVERLAPS = [
    ("site", "site/local", ("site", "site/local")),  # the local copies folder inside a source
    ("site/inner", "site", ("site/inner", "site")),  # a source inside the local copies folder
    ("site", "site", ("site", "site")),  # the same folder
    ("data/area", "copies", ("data/area", "data")),  # a source inside the data folder
    ("other", "data", ("data", "data")),  # the local copies folder is the data folder
]


@pytest.mark.parametrize(("source", "copies", "named"), OVERLAPS)
def test_overlapping_folders_are_refused_at_start_up(
    make_server_process: Callable[..., ServerProcess], tmp_path: Path, source: str, copies: str, named: tuple[str, str]
) -> None:
    (tmp_path / source).mkdir(parents=True, exist_ok=True)
    (tmp_path / "site" / "keep.txt").parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / "site" / "keep.txt").write_text("mine")
    config = tmp_path / "backups.toml"
    config.write_text(f'[[sources]]\nname = "site"\nkind = "directory"\npath = "{tmp_path / source}"\n')
    server = make_server_process(BACKUPS_CONFIG=str(config), BACKUPS_LOCAL_COPIES_DIR=str(tmp_path / copies))
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    refused = serve_once(server.env)
    assert refused.returncode == 2, refused.stderr
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in refused.stderr, refused.stderr
    assert lines[0].endswith(": the folders must not overlap"), lines
    first, second = (f"({tmp_path / name})" for name in named)
    if first == second:
        assert lines[0].count(first) == 2, lines
    else:
        assert first in lines[0] and second in lines[0], lines
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # nothing made, nothing lost
    assert (tmp_path / "site" / "keep.txt").read_text() == "mine"


def test_a_config_path_that_is_a_symlink_loop_is_one_line(
    make_server_process: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    config = tmp_path / "backups.toml"
    config.write_text(f'[[sources]]\nname = "site"\nkind = "directory"\npath = "{tmp_path / "loop"}"\n')
    refused = serve_once(make_server_process(BACKUPS_CONFIG=str(config)).env)
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr == (
        f"backups: config file {config}: source 'site': path {tmp_path / 'loop'} cannot be resolved: "
        "it is a symlink loop\n"
    )


def wait_for_partial(folder: Path, timeout: float = 20) -> list[Path]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [p for p in folder.iterdir() if PARTIAL.fullmatch(p.name)] if folder.exists() else []
        if found:
            return found
        time.sleep(0.002)
    raise AssertionError(f"no partial file appeared in {folder}")


async def test_an_export_killed_mid_write_leaves_nothing_after_the_restart(
    make_server_process: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    server = make_server_process(BACKUPS_CONFIG=str(site(tmp_path, files=30)), BACKUPS_LOG_LEVEL="info").start()
    point = await wait_for_operation(server, (await create_restore_point(server, "to export"))["id"])
    point_id = point["restorePoint"]["id"]
    copies = server.data_dir / "local-copies"
    kept = await export_names(server, point_id, "site/")  # a finished copy, which must survive
    finished = sorted(p.name for p in copies.iterdir())
    server.stop()
    server.env_overrides["BACKUPS_TEST_ENTRY_DELAY"] = "0.2"
    server.start()
    data = await execute(server, EXPORT, id=point_id)
    assert data["exportRestorePoint"]["userErrors"] == [], data
    partial = wait_for_partial(copies)
    assert partial[0].name.endswith(".partial") and partial[0].name.startswith(".")
    server.kill()
    assert all(p.exists() for p in partial)  # what the issue saw: left behind by the kill
    user_files = plant_look_alikes(copies)
    server.env_overrides["BACKUPS_TEST_ENTRY_DELAY"] = "0"
    log_start = server.log_path.stat().st_size
    server.start()
    assert not any(p.exists() for p in partial)
    assert sorted(p.name for p in copies.iterdir()) == sorted(finished + user_files)
    assert (
        "removed the temporary files a stopped server left: 1 in the local copies folder"
        in (server.log_path.read_text()[log_start:])
    )
    state = (await execute(server, OPERATION, id=data["exportRestorePoint"]["operation"]["id"]))["operation"]
    assert state["status"] == "INTERRUPTED"
    assert await export_names(server, point_id, "site/") == kept


def plant_look_alikes(copies: Path) -> list[str]:
    """Files a user might keep that resemble our temp names: none may be removed."""
    names = ["copy.zip.abcdefgh.partial", ".notes.partial", ".upload-abc.partial", ".x.zip.abcdefghi.partial"]
    for name in names:
        (copies / name).write_text("user data")
    return names


async def test_an_upload_killed_mid_copy_leaves_nothing_after_the_restart(
    make_server_process: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    """The body is received by Starlette (in an anonymous temp file) before the copy into
    the local copies folder starts; the kill lands while that copy is checked."""
    from tests.api.test_local_copies import upload

    server = make_server_process(BACKUPS_CONFIG=str(site(tmp_path, files=0)), BACKUPS_LOG_LEVEL="info").start()
    big = tmp_path / "site" / "big.bin"
    big.write_bytes(os.urandom(60 * 1024 * 1024))
    point = await wait_for_operation(server, (await create_restore_point(server, "big"))["id"])
    data = await execute(server, EXPORT, id=point["restorePoint"]["id"])
    final = await wait_for_operation(server, data["exportRestorePoint"]["operation"]["id"])
    name = (await execute(server, COPY, id=final["id"]))["operation"]["localCopy"]["fileName"]
    copies = server.data_dir / "local-copies"
    carried = tmp_path / "carried.zip"
    os.replace(copies / name, carried)

    sending = asyncio.create_task(upload(server, carried, filename="again.zip"))
    try:
        partial = await asyncio.to_thread(wait_for_partial, copies, 60)
        server.kill()
    finally:
        with pytest.raises(Exception):  # noqa: B017 (the connection dies with the server)
            await sending
    assert [p.name for p in partial][0].startswith(".upload.") and all(p.exists() for p in partial)
    user_files = plant_look_alikes(copies)
    log_start = server.log_path.stat().st_size
    server.start()
    assert sorted(p.name for p in copies.iterdir()) == sorted(user_files)
    assert (
        "removed the temporary files a stopped server left: 1 in the local copies folder"
        in (server.log_path.read_text()[log_start:])
    )


def test_the_servers_other_temp_files_are_cleared_and_nothing_else(
    make_server_process: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    """Temp files of the content store, the apply journal and the spool, as a killed server
    leaves them (names as their writers make them), go at start; look-alikes stay."""
    server = make_server_process(BACKUPS_LOG_LEVEL="info").start()
    server.stop()
    data = server.data_dir
    (data / "spool").mkdir(exist_ok=True)
    digest_folder = data / "blobs" / "ab"
    digest_folder.mkdir(parents=True, exist_ok=True)
    ours = [
        data / "blobs" / "tmp" / "put-4242-7",
        data / "blobs" / "ab" / ".put-4242-8",
        data / ".apply-journal-k2j4h_8x",
        data / ".apply-journal.json.p0o9i8u7.partial",
        data / "spool" / "spool-q1w2e3r4",
    ]
    theirs = [data / ".apply-journal-keep", data / "spool" / "notes.txt", data / "spool-q1w2e3r4"]
    for path in ours + theirs:
        path.write_bytes(b"left")
    log_start = server.log_path.stat().st_size
    server.start()
    assert [p for p in ours if p.exists()] == []
    assert all(p.read_bytes() == b"left" for p in theirs)
    assert (
        "removed the temporary files a stopped server left: 2 in the data folder, 1 in the spool folder, "
        "2 in the content store"
    ) in server.log_path.read_text()[log_start:]
