"""README's reconnect recipe with the npm graphql-ws client (tests/node/reconnect.mjs) across a
real server crash and restart (same port, same data): the log resumed after the last sequence
seen has every stored line once, in order, and the line saying why it ended, numbered after
every line seen (even lines the crash kept from being stored); a RUNNING -> INTERRUPTED change
made while the client was away is picked up. The gql version of both is tests/api/test_reconnect.py."""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.support.api import create_restore_point, execute, wait_for_operation
from tests.support.db_writes import writes_blocked
from tests.support.server_process import ROOT, ServerProcess
from tests.support.web_page import WEB, ensure_installed

pytestmark = pytest.mark.slow

SCRIPT = ROOT / "tests" / "node" / "reconnect.mjs"


@pytest.fixture(scope="module")
def node() -> list[str]:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("Node.js/npm are missing: the graphql-ws reconnect test runs where they are")
    ensure_installed()
    assert (WEB / "node_modules" / "graphql-ws").is_dir()
    major = int(
        subprocess.run(["node", "-p", "process.versions.node"], capture_output=True, text=True).stdout.split(".")[0]
    )
    return ["node", "--experimental-websocket"] if major < 22 else ["node"]


class Script:
    """The Node script in a subprocess; its JSON lines read on a thread, waited on with a deadline."""

    def __init__(self, command: list[str]) -> None:
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: list[dict[str, Any]] = []
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for text in self.process.stdout:
            self._queue.put(json.loads(text))
        self._queue.put(None)

    def wait_for(self, condition: Callable[[dict[str, Any]], bool], timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            self.lines.append(line)
            if condition(line):
                return line
        stderr = self.process.stderr.read() if self.process.poll() is not None and self.process.stderr else ""
        self.close()
        raise AssertionError(f"not seen within {timeout}s; lines: {self.lines}; stderr: {stderr}")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.communicate(timeout=10)  # and closes its pipes


@pytest.fixture
def slow_site(make_server_process, tmp_path: Path) -> ServerProcess:
    folder = tmp_path / "site"
    folder.mkdir()
    for index in range(60):
        (folder / f"file-{index:02}.txt").write_text(f"content {index}\n")
    config = tmp_path / "sources.toml"
    config.write_text(f'[[sources]]\nname = "site"\nkind = "directory"\npath = "{folder}"\n')
    return make_server_process(BACKUPS_CONFIG=str(config), BACKUPS_TEST_ENTRY_DELAY="0.2").start()


@pytest.fixture
def script(node: list[str], slow_site: ServerProcess) -> Iterator[Callable[..., Script]]:
    started: list[Script] = []

    def start(mode: str, op_id: str) -> Script:
        started.append(Script([*node, str(SCRIPT), mode, slow_site.ws_url, slow_site.token or "", op_id]))
        return started[-1]

    yield start
    for each in started:
        each.close()


async def test_the_log_resumes_after_a_restart_with_every_line_once(slow_site: ServerProcess, script) -> None:
    op = await create_restore_point(slow_site, "followed from node")
    follower = script("log", op["id"])
    follower.wait_for(lambda line: line.get("line", 0) >= 3)  # mid-log: the operation is still running
    with writes_blocked(slow_site, "operation", "operation_log"):
        # Lines appended from now on are shown from memory and cannot be stored: the crash
        # below loses them after the follower saw them.
        blocked_at = datetime.now(UTC)
        unstored = follower.wait_for(lambda line: "at" in line and datetime.fromisoformat(line["at"]) > blocked_at)
        slow_site.kill()  # a crash: the operation is left RUNNING, interrupted by the next start
    follower.wait_for(lambda line: "lost" in line)
    slow_site.start()
    follower.wait_for(lambda line: line.get("done") is True)
    stored = await execute(
        slow_site, "query($id: ID!) { operation(id: $id) { status log { sequence message } } }", id=op["id"]
    )
    assert stored["operation"]["status"] == "INTERRUPTED"
    stored_lines = {line["sequence"]: line["message"] for line in stored["operation"]["log"]}
    seen = [line["line"] for line in follower.lines if "line" in line]
    messages = {line["line"]: line["message"] for line in follower.lines if "line" in line}
    assert seen == sorted(set(seen)), seen  # each line once, in order
    assert unstored["line"] not in stored_lines  # the case this test is about: seen, then lost
    # Every stored line was seen, as stored: a number never names two lines...
    assert {number: messages.get(number) for number in stored_lines} == stored_lines
    # ...so the line saying why it ended has a number after every line seen before the crash.
    assert seen[-1] > unstored["line"] and messages[seen[-1]].startswith("Interrupted"), seen
    lost = [line for line in follower.lines if "lost" in line]
    # Lost mid-log (INTERRUPTED above: the operation was still running), so the resume asked
    # for afterSequence = the last line seen, not 0.
    assert 3 <= unstored["line"] <= lost[0]["after"] < seen[-1], lost
    assert all(line["after"] == lost[0]["after"] for line in lost), lost  # retried from there


async def test_a_change_made_while_away_is_picked_up_after_the_reconnect(slow_site: ServerProcess, script) -> None:
    op = await create_restore_point(slow_site, "interrupted while away")
    watcher = script("changes", op["id"])
    # The starting state (includeCurrent) shows it unfinished at once, before any change.
    watcher.wait_for(lambda line: line.get("id") == op["id"] and line["status"] in ("QUEUED", "RUNNING"))
    slow_site.kill()
    watcher.wait_for(lambda line: "lost" in line)
    slow_site.start()  # marks it INTERRUPTED before any client can connect: no event will say so
    done = watcher.wait_for(lambda line: line.get("done") is True)
    assert done == {"done": True, "status": "INTERRUPTED", "how": "refetched"}, watcher.lines
    assert (await wait_for_operation(slow_site, op["id"]))["status"] == "INTERRUPTED"
