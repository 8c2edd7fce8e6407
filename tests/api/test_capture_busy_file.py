"""A create while a file of a folder source keeps growing (a busy log): the file is read
again a few times, then the create fails naming it, and adds nothing; once the writer
stops, a create captures the file as it settled (issue 12, item 11)."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.support.api import create_and_wait, create_restore_point, execute, wait_for_operation
from tests.support.apply import restore_points
from tests.support.server_process import ServerProcess

ENTRIES = "query($id: ID!) { restorePoint(id: $id) { entries { path sizeBytes sha256 } } }"


async def test_a_file_growing_during_a_create_fails_it_by_name_then_is_captured_once_it_settles(
    make_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    busy = site / "busy.log"
    busy.write_bytes(b"z" * (3 * 1024 * 1024))
    (site / "quiet.txt").write_text("calm\n")
    config = tmp_path / "backups.toml"
    config.write_text(f'[[sources]]\nname = "site"\nkind = "directory"\npath = "{site}"\n')
    server = make_server(BACKUPS_CONFIG=str(config)).start()
    # The writer is a process of its own: a thread here would share the GIL with the in-process
    # server, and under load could be held off through all three of the capture's reads.
    script = "import sys\nwith open(sys.argv[1], 'ab', buffering=0) as log:\n    while True:\n        log.write(b'another line of a busy log\\n')\n"
    writer = subprocess.Popen([sys.executable, "-c", script, str(busy)])
    try:
        size = busy.stat().st_size
        for _ in range(500):  # it has begun once the file grows
            if busy.stat().st_size > size:
                break
            await asyncio.sleep(0.01)
        assert busy.stat().st_size > size
        final = await wait_for_operation(server, (await create_restore_point(server, "busy"))["id"])
    finally:
        writer.kill()
        writer.wait()

    assert final["status"] == "FAILED" and final["error"]["code"] == "SOURCE_CHANGED", final
    assert "site/busy.log" in final["error"]["message"] and "on each of 3 reads" in final["error"]["message"]
    assert await restore_points(server) == []

    point = (await create_and_wait(server, "settled"))["restorePoint"]
    entries = {e["path"]: e for e in (await execute(server, ENTRIES, id=point["id"]))["restorePoint"]["entries"]}
    settled = busy.read_bytes()
    assert entries["busy.log"]["sizeBytes"] == len(settled) > 3 * 1024 * 1024
    assert entries["busy.log"]["sha256"] == hashlib.sha256(settled).hexdigest()
