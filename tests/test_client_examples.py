"""The client examples run against a real server, as a user would run them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.api import execute
from tests.support.server_process import ServerProcess

EXAMPLES = Path(__file__).resolve().parents[1] / "client_examples"


def run_example(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True, timeout=120
    )


def test_create_and_follow_shows_progress_and_log(slow_server: ServerProcess) -> None:
    result = run_example("create_and_follow.py", "--url", slow_server.graphql_url, "--label", "from the example")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "operation op_" in out
    assert "100.0%" in out and "[" in out
    assert "INFO    Started." in out and "INFO    Finished." in out
    assert 'restore point rp_' in out and '"from the example"' in out


async def test_history_pages_as_table_and_json(make_server) -> None:
    proc = make_server().start()
    table = run_example("history.py", "--url", proc.graphql_url)
    assert table.returncode == 0 and "no restore points yet" in table.stdout
    for index in range(3):
        result = run_example("create_and_follow.py", "--url", proc.graphql_url, "--label", f"history {index}")
        assert result.returncode == 0, result.stderr

    lines = run_example("history.py", "--url", proc.graphql_url, "--json", "--page-size", "2")
    assert lines.returncode == 0, lines.stderr
    points = [json.loads(line) for line in lines.stdout.splitlines()]
    assert [p["label"] for p in points] == ["history 2", "history 1", "history 0"]
    expected = await execute(proc, "{ restorePoints { nodes { id } } }")
    assert [p["id"] for p in points] == [n["id"] for n in expected["restorePoints"]["nodes"]]

    table = run_example("history.py", "--url", proc.graphql_url, "--page-size", "2")
    assert table.returncode == 0
    rows = table.stdout.splitlines()
    assert rows[0].startswith("CREATED (UTC)")
    assert [row.rsplit(" ", 2)[-2:] for row in rows[1:]] == [["history", "2"], ["history", "1"], ["history", "0"]]
    assert "-- 2 of 3" in table.stderr and "-- 3 of 3" in table.stderr


def test_export_and_download_checks_every_hash(server: ServerProcess, tmp_path: Path) -> None:
    created = run_example("create_and_follow.py", "--url", server.graphql_url, "--label", "for download")
    assert created.returncode == 0, created.stderr
    point_id = created.stdout.split("restore point ")[-1].split()[0]
    result = run_example("export_and_download.py", point_id, "--url", server.graphql_url, "-o", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "every SHA-256 matches the manifest" in result.stdout
    assert "100.0%" in result.stdout
    [downloaded] = list(tmp_path.glob("*.zip"))
    assert downloaded.read_bytes() == (server.data_dir / "local-copies" / downloaded.name).read_bytes()
