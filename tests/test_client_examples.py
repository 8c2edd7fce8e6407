"""The client examples run against a real server, as a user would run them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.api import execute
from tests.support.server_process import ServerProcess

EXAMPLES = Path(__file__).resolve().parents[1] / "client_examples"


def run_example(name: str, *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "BACKUPS_TOKEN"}
    if token is not None:
        env["BACKUPS_TOKEN"] = token
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True, timeout=120, env=env
    )


def test_create_and_follow_shows_progress_and_log(slow_server: ServerProcess) -> None:
    result = run_example(
        "create_and_follow.py",
        "--url",
        slow_server.graphql_url,
        "--label",
        "from the example",
        "--token",
        slow_server.token,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "operation op_" in out
    assert "progress 100.0%" in out
    assert "\r" not in out  # into a pipe: lines, no progress bar redrawn with \r
    assert "INFO    Started." in out and "INFO    Finished." in out
    assert "restore point rp_" in out and '"from the example"' in out


async def test_history_pages_as_table_and_json(make_server) -> None:
    proc = make_server().start()
    table = run_example("history.py", "--url", proc.graphql_url, token=proc.token)  # from BACKUPS_TOKEN
    assert table.returncode == 0 and "no restore points yet" in table.stdout
    for index in range(3):
        result = run_example(
            "create_and_follow.py", "--url", proc.graphql_url, "--label", f"history {index}", token=proc.token
        )
        assert result.returncode == 0, result.stderr

    lines = run_example("history.py", "--url", proc.graphql_url, "--json", "--page-size", "2", "--token", proc.token)
    assert lines.returncode == 0, lines.stderr
    points = [json.loads(line) for line in lines.stdout.splitlines()]
    assert [p["label"] for p in points] == ["history 2", "history 1", "history 0"]
    expected = await execute(proc, "{ restorePoints { nodes { id } } }")
    assert [p["id"] for p in points] == [n["id"] for n in expected["restorePoints"]["nodes"]]

    table = run_example("history.py", "--url", proc.graphql_url, "--page-size", "2", token=proc.token)
    assert table.returncode == 0
    rows = table.stdout.splitlines()
    assert rows[0].startswith("CREATED (UTC)")
    assert [row.rsplit(" ", 2)[-2:] for row in rows[1:]] == [["history", "2"], ["history", "1"], ["history", "0"]]
    assert "-- 2 of 3" in table.stderr and "-- 3 of 3" in table.stderr


def test_export_and_download_checks_every_hash(server: ServerProcess, tmp_path: Path) -> None:
    created = run_example(
        "create_and_follow.py", "--url", server.graphql_url, "--label", "for download", token=server.token
    )
    assert created.returncode == 0, created.stderr
    point_id = created.stdout.split("restore point ")[-1].split()[0]
    result = run_example(
        "export_and_download.py", point_id, "--url", server.graphql_url, "-o", str(tmp_path), token=server.token
    )
    assert result.returncode == 0, result.stderr
    assert "every SHA-256 matches the manifest" in result.stdout
    assert "100.0%" in result.stdout and "\r" not in result.stdout
    [downloaded] = list(tmp_path.glob("*.zip"))
    assert f"saved {downloaded.resolve()}: " in result.stdout  # where the file went
    assert downloaded.read_bytes() == (server.data_dir / "local-copies" / downloaded.name).read_bytes()


def test_examples_explain_a_missing_or_small_token(server: ServerProcess) -> None:
    missing = run_example("history.py", "--url", server.graphql_url)
    assert missing.returncode == 1
    assert "error UNAUTHENTICATED" in missing.stderr and "--token or the BACKUPS_TOKEN" in missing.stderr
    assert "Traceback" not in missing.stderr
    viewer = server.create_token("example-viewer", "viewer")
    small = run_example("create_and_follow.py", "--url", server.graphql_url, token=viewer)
    assert small.returncode == 1
    assert "error FORBIDDEN: This needs the operator role" in small.stderr and "Traceback" not in small.stderr


def test_examples_say_when_the_server_cannot_be_reached() -> None:
    from tests.support.server_process import free_port

    url = f"http://127.0.0.1:{free_port()}/graphql"  # nothing listens there
    for name in ("create_and_follow.py", "export_and_download.py", "history.py"):
        result = run_example(name, "--url", url, token="bk_x")
        assert result.returncode == 1, (name, result.stderr)
        assert f"cannot reach the server at {url}" in result.stderr, (name, result.stderr)
        assert "Traceback" not in result.stderr, (name, result.stderr)
