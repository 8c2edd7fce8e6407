"""Reconnecting without duplicates, no number reused: the resumable log helper across a real
server restart and across a crash, and operationsChanged(includeCurrent) starting with what is
running now."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from client_examples.follow_log import resumable_log
from tests.support.api import create_restore_point, execute, subscribe, wait_for_operation
from tests.support.db_writes import writes_blocked
from tests.support.server_process import ROOT, ServerProcess

HELPER = ROOT / "client_examples" / "follow_log.py"


def sequences(output: str) -> list[int]:
    return [int(line.split()[0]) for line in output.splitlines() if line.strip()]


async def test_the_log_helper_resumes_after_a_restart_without_gaps_or_duplicates(
    make_server_process, tmp_path: Path
) -> None:
    folder = tmp_path / "site"
    folder.mkdir()
    for index in range(200):  # 0.1 s each: still running when the helper has started, however slowly
        (folder / f"file-{index:02}.txt").write_text(f"content {index}\n")
    config = tmp_path / "sources.toml"
    config.write_text(f'[[sources]]\nname = "site"\nkind = "directory"\npath = "{folder}"\n')
    server = make_server_process(BACKUPS_CONFIG=str(config), BACKUPS_TEST_ENTRY_DELAY="0.1").start()
    op = await create_restore_point(server, "followed")
    helper = subprocess.Popen(
        [sys.executable, str(HELPER), op["id"], "--url", server.graphql_url, "--token", server.token or ""],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # The helper has shown two lines (its own start-up took seconds under load): the
        # restart then falls mid-log, while the operation still runs.
        assert helper.stdout is not None
        first = "".join([await asyncio.wait_for(asyncio.to_thread(helper.stdout.readline), 60) for _ in range(2)])
        assert (await execute(server, "query($id: ID!) { operation(id: $id) { done } }", id=op["id"]))["operation"] == {
            "done": False
        }
        server.stop()
        time.sleep(1.0)  # down for a while: the helper retries
        server.start()
        helper.wait(timeout=60)  # its output (some 200 lines) fits in the pipes meanwhile
        # The rest from the same buffered readers (communicate would skip what they hold).
        out, err = first + helper.stdout.read(), helper.stderr.read() if helper.stderr else ""
    finally:
        if helper.poll() is None:
            helper.kill()
            helper.wait()
        for pipe in (helper.stdout, helper.stderr):
            if pipe is not None:
                pipe.close()
    assert helper.returncode == 0, err
    final = await wait_for_operation(server, op["id"])
    assert final["status"] == "INTERRUPTED"
    stored = await execute(server, "query($id: ID!) { operation(id: $id) { log { sequence message } } }", id=op["id"])
    expected = [line["sequence"] for line in stored["operation"]["log"]]
    seen = sequences(out)
    assert seen == expected == list(range(1, len(expected) + 1)), out  # every line once, in order
    assert "Interrupted" in out.splitlines()[-1]
    resumed = [line for line in err.splitlines() if line.startswith("connection lost; resuming after line ")]
    assert len(resumed) == 1, err  # it did lose the connection, once, mid-log
    assert 1 < int(resumed[0].split()[-5]) < len(expected)


def site_server(make_server_process, tmp_path: Path, files: int, delay: str) -> ServerProcess:
    """A server with one folder source whose capture pauses (and logs a line) after each file."""
    folder = tmp_path / "site"
    folder.mkdir()
    for index in range(files):
        (folder / f"file-{index:03}.txt").write_text(f"content {index}\n")
    config = tmp_path / "sources.toml"
    config.write_text(f'[[sources]]\nname = "site"\nkind = "directory"\npath = "{folder}"\n')
    return make_server_process(BACKUPS_CONFIG=str(config), BACKUPS_TEST_ENTRY_DELAY=delay).start()


async def test_a_line_seen_live_keeps_its_number_across_a_crash(make_server_process, tmp_path: Path) -> None:
    """A follower saw lines live that the SIGKILL kept from being stored: after the restart the
    The recipe of docs/api/building-a-ui.md (resume with afterSequence: the last sequence seen) gets the line that says
    why the operation ended, numbered after every line seen, and no stored line carries a
    number the follower saw on another line."""
    server = site_server(make_server_process, tmp_path, files=300, delay="0.1")
    op = await create_restore_point(server, "killed while followed")
    seen: dict[int, str] = {}
    order: list[int] = []
    killed_after = None
    blocked_at = None
    block = writes_blocked(server, "operation", "operation_log")
    try:
        async for line in resumable_log(server.ws_url, server.token, op["id"], give_up_after=120):
            seen[line["sequence"]] = line["message"]
            order.append(line["sequence"])
            if killed_after is None and blocked_at is None and line["message"].startswith("Paused"):
                # Running and logging: from now on nothing the server writes is stored.
                await asyncio.to_thread(block.__enter__)
                blocked_at = datetime.now(UTC)
            elif killed_after is None and blocked_at and datetime.fromisoformat(line["at"]) > blocked_at:
                # Appended after the block began, so shown from memory and not stored: a crash now.
                killed_after = line["sequence"]
                server.kill()
                block.__exit__(None, None, None)
                blocked_at = None
                await asyncio.to_thread(server.start)
    finally:
        if blocked_at is not None:
            block.__exit__(None, None, None)
    assert killed_after is not None, order
    assert order == sorted(set(order)), order  # each line once, in order
    stored = await execute(
        server, "query($id: ID!) { operation(id: $id) { status log { sequence message } } }", id=op["id"]
    )
    assert stored["operation"]["status"] == "INTERRUPTED"
    lines = {line["sequence"]: line["message"] for line in stored["operation"]["log"]}
    assert killed_after not in lines  # the crash did lose it: the case this test is about
    last = order[-1]
    assert last > killed_after and seen[last].startswith("Interrupted"), (killed_after, order[-3:], seen[last])
    assert lines[last] == seen[last]
    # A number names one line: every stored line the follower saw is the line it saw.
    assert {number: message for number, message in lines.items() if number in seen} == {
        number: seen[number] for number in lines if number in seen
    }
    assert set(lines) <= set(seen), sorted(set(lines) - set(seen))  # and it missed no stored line


async def test_operations_changed_can_start_with_the_running_operations(make_server) -> None:
    server = make_server(BACKUPS_TEST_ENTRY_DELAY="0.25").start()
    finished = await create_restore_point(server, "finished first")
    await wait_for_operation(server, finished["id"])
    running = await create_restore_point(server, "still running")

    async def first_event(query: str) -> dict:
        async for event in subscribe(server, query):
            return event["operationsChanged"]
        raise AssertionError("no event")

    event = await asyncio.wait_for(
        first_event("subscription { operationsChanged(includeCurrent: true) { id status } }"), 10
    )
    assert event["id"] == running["id"] and event["status"] in ("QUEUED", "RUNNING")
    # Without it, nothing is sent until something changes (here: the running one progresses).
    later = await asyncio.wait_for(first_event("subscription { operationsChanged { id status } }"), 30)
    assert later["id"] == running["id"]
    await wait_for_operation(server, running["id"])
