"""The client examples run against a real server, as a user would run them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.api import create_and_wait, execute
from tests.support.folder_source import folder_server
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


async def test_preview_and_apply_shows_the_diff_asks_and_reports(make_server) -> None:
    proc = make_server().start()
    created = run_example("create_and_follow.py", "--url", proc.graphql_url, "--label", "before", token=proc.token)
    point_id = created.stdout.split("restore point ")[-1].split()[0]
    before = await execute(proc, "{ modules { name settings } }")
    await execute(
        proc,
        'mutation { updateSettings(module: "audio", values: {masterVolume: 3.5, extra: "x"}) { userErrors { code } } }',
    )
    command = [sys.executable, str(EXAMPLES / "preview_and_apply.py"), point_id, "--url", proc.graphql_url]
    env = {**os.environ, "BACKUPS_TOKEN": proc.token}

    said_no = subprocess.run(command, input="no\n", capture_output=True, text=True, timeout=120, env=env)
    assert said_no.returncode == 2, said_no.stderr
    out = said_no.stdout
    assert "CHANGED  settings/audio.json" in out and "/masterVolume: 3.5 -> " in out
    assert '/extra: "x" -> (absent)' in out
    assert "Applying would change: 0 added, 0 removed, 1 changed" in out and "Not applied." in out
    assert "\033[" not in out  # into a pipe: no colors
    assert await execute(proc, "{ modules { name settings } }") != before  # nothing applied

    applied = subprocess.run(command + ["--yes"], capture_output=True, text=True, timeout=120, env=env)
    assert applied.returncode == 0, applied.stderr
    assert "Applied: 0 added, 0 removed, 1 changed" in applied.stdout
    assert "  Changed: settings/audio.json" in applied.stdout
    assert await execute(proc, "{ modules { name settings } }") == before

    again = subprocess.run(command + ["--yes"], capture_output=True, text=True, timeout=120, env=env)
    assert again.returncode == 0 and "Nothing to apply" in again.stdout


async def test_schedule_makes_a_schedule_prints_the_preview_and_watches_health(make_server) -> None:
    proc = make_server().start()
    made = run_example(
        "schedule.py",
        "--url",
        proc.graphql_url,
        "--name",
        "nightly",
        "--cron",
        "30 2 * * *",
        "--time-zone",
        "Europe/Berlin",
        "--keep-last",
        "2",
        # The first event is the health as it is now; waiting for it, not for a time, which a
        # busy machine can pass before the websocket is even acknowledged.
        "--watch",
        "120",
        "--events",
        "1",
        token=proc.token,
    )
    assert made.returncode == 0, made.stderr
    assert "'nightly': 30 2 * * * (Europe/Berlin)" in made.stdout and "keeping keepLast=2" in made.stdout
    assert "no restore points of this schedule yet" in made.stdout
    assert "health OK: last success never" in made.stdout

    schedule = (await execute(proc, "{ schedules { id } }"))["schedules"][0]
    for _ in range(3):
        op = (
            await execute(proc, "mutation($id: ID!) { runSchedule(id: $id) { operation { id } } }", id=schedule["id"])
        )["runSchedule"]["operation"]
        from tests.support.api import wait_for_operation

        assert (await wait_for_operation(proc, op["id"]))["status"] == "SUCCEEDED"
    # Again with a stricter policy: the same schedule is updated, and the preview names what goes.
    again = run_example(
        "schedule.py", "--url", proc.graphql_url, "--name", "nightly", "--keep-last", "1", token=proc.token
    )
    assert again.returncode == 0, again.stderr
    assert len((await execute(proc, "{ schedules { id } }"))["schedules"]) == 1
    lines = again.stdout.splitlines()
    assert sum(line.startswith("keep ") for line in lines) == 1
    assert any(line.startswith("delete") and "kept by no retention rule" in line for line in lines)

    refused = run_example(
        "schedule.py", "--url", proc.graphql_url, "--name", "bad", "--cron", "61 * * * *", token=proc.token
    )
    assert refused.returncode == 1 and "error INVALID_INPUT (cron)" in refused.stderr


async def test_restore_item_lists_downloads_and_puts_back_one_item(make_server, tmp_path: Path) -> None:
    server, site, _ = folder_server(
        make_server, tmp_path, files={"conf/app.yaml": "port: 80\n", "conf/Grüße.txt": "hallo\n"}, database=True
    )
    point = (await create_and_wait(server, "for one item"))["restorePoint"]["id"]
    args = ["--url", server.graphql_url]

    top = run_example("restore_item.py", point, "ls", *args, token=server.token)
    assert top.returncode == 0, top.stderr
    assert "FOLDER" in top.stdout and "site/conf" in top.stdout
    assert "TABLE" in top.stdout and "appdb/users  3 rows" in top.stdout
    assert "MODULE" in top.stdout and "settings/audio.json" in top.stdout
    inside = run_example("restore_item.py", point, "ls", "site", "conf", *args, token=server.token)
    assert inside.returncode == 0 and "site/conf/Grüße.txt" in inside.stdout and "site/conf/app.yaml" in inside.stdout

    got = subprocess.run(
        [sys.executable, str(EXAMPLES / "restore_item.py"), point, "get", "site", "conf/Grüße.txt", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "BACKUPS_TOKEN": server.token},
    )
    assert got.returncode == 0, got.stderr
    assert (tmp_path / "Grüße.txt").read_text() == "hallo\n"  # named as the server offered it
    table = run_example(
        "restore_item.py", point, "get", "appdb", "users", "-o", str(tmp_path / "u.csv"), *args, token=server.token
    )
    assert table.returncode == 0 and (tmp_path / "u.csv").read_text().splitlines()[0] == '"id","name"'

    (site / "conf" / "app.yaml").write_text("port: 8080\n")
    (site / "conf" / "Grüße.txt").write_text("changed since, and kept\n")
    command = [sys.executable, str(EXAMPLES / "restore_item.py"), point, "put", "site", "conf/app.yaml", *args]
    env = {**os.environ, "BACKUPS_TOKEN": server.token}
    said_no = subprocess.run(command, input="no\n", capture_output=True, text=True, timeout=120, env=env)
    assert said_no.returncode == 2 and "CHANGED  site/conf/app.yaml" in said_no.stdout, said_no.stderr
    assert (site / "conf" / "app.yaml").read_text() == "port: 8080\n"  # nothing put back
    put = subprocess.run(command + ["--yes"], capture_output=True, text=True, timeout=120, env=env)
    assert put.returncode == 0, put.stderr
    assert "Put back site/conf/app.yaml" in put.stdout
    assert (site / "conf" / "app.yaml").read_text() == "port: 80\n"
    assert (site / "conf" / "Grüße.txt").read_text() == "changed since, and kept\n"

    bad = run_example("restore_item.py", point, "get", "site", "../etc/passwd", *args, token=server.token)
    assert bad.returncode == 1 and "INVALID_INPUT" in bad.stderr
