"""Questions a script asks of the history and the disk: operations in a time window, failures
whether dismissed or not, and what the backups take on disk."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from tests.support.api import create_and_wait, create_restore_point, execute, execute_errors, wait_for_operation
from tests.support.blobs import store_on_disk
from tests.support.server_process import ServerProcess

WINDOW = """query($after: DateTime, $before: DateTime, $status: [OperationStatus!]) {
    operations(first: 100, createdAfter: $after, createdBefore: $before, status: $status) {
        totalCount nodes { id status dismissed createdAt } } }"""


def failing_server(make_server: Callable[..., ServerProcess], tmp_path: Path) -> ServerProcess:
    """A server whose every create fails (its one source folder is missing)."""
    config = tmp_path / "sources.toml"
    config.write_text(f'[[sources]]\nname = "site"\nkind = "directory"\npath = "{tmp_path}/missing"\n')
    return make_server(BACKUPS_CONFIG=str(config)).start()


async def failed_operation(server: ServerProcess) -> dict:
    op = await create_restore_point(server, "doomed")
    final = await wait_for_operation(server, op["id"])
    assert final["status"] == "FAILED"
    return final


async def test_operations_between_two_moments(make_server, tmp_path: Path) -> None:
    server = failing_server(make_server, tmp_path)
    first = await failed_operation(server)
    await asyncio.sleep(0.05)
    second = await failed_operation(server)
    at_first = datetime.fromisoformat(first["createdAt"])
    at_second = datetime.fromisoformat(second["createdAt"])
    assert at_first < at_second

    def ids(data: dict) -> list[str]:
        return [node["id"] for node in data["operations"]["nodes"]]

    assert ids(await execute(server, WINDOW, after=first["createdAt"])) == [second["id"]]  # exclusive
    assert ids(await execute(server, WINDOW, before=second["createdAt"])) == [first["id"]]
    both = await execute(
        server,
        WINDOW,
        after=(at_first - timedelta(seconds=1)).isoformat(),
        before=(at_second + timedelta(seconds=1)).isoformat(),
    )
    assert ids(both) == [second["id"], first["id"]] and both["operations"]["totalCount"] == 2
    # "failed in the last 24 hours", as a script asks it, in another time zone's notation
    since = (datetime.fromisoformat(second["createdAt"]) - timedelta(hours=24)).astimezone().isoformat()
    assert len(ids(await execute(server, WINDOW, after=since, status=["FAILED"]))) == 2
    assert ids(await execute(server, WINDOW, after=second["createdAt"], before=first["createdAt"])) == []


async def test_a_moment_without_utc_offset_is_refused(server: ServerProcess) -> None:
    before = await execute(server, "{ operations(includeDismissed: true) { totalCount } }")
    errors = await execute_errors(server, WINDOW, after="2026-03-01T12:00:00")
    assert errors[0]["extensions"]["code"] == "INVALID_INPUT"
    assert "createdAfter needs a UTC offset" in errors[0]["message"]
    errors = await execute_errors(server, WINDOW, before="yesterday")
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert await execute(server, "{ operations(includeDismissed: true) { totalCount } }") == before


async def test_a_dismissed_failure_still_counts_in_a_status_filter(make_server, tmp_path: Path) -> None:
    server = failing_server(make_server, tmp_path)
    failed = await failed_operation(server)
    dismissed = await execute(
        server, "mutation($id: ID!) { dismissOperation(id: $id) { userErrors { code } } }", id=failed["id"]
    )
    assert dismissed["dismissOperation"]["userErrors"] == []

    by_status = await execute(server, WINDOW, status=["FAILED"])
    assert [(n["id"], n["dismissed"]) for n in by_status["operations"]["nodes"]] == [(failed["id"], True)]
    assert by_status["operations"]["totalCount"] == 1
    default = await execute(server, WINDOW)  # the default list stays tidy
    assert default["operations"]["totalCount"] == 0


def on_disk(server: ServerProcess) -> tuple[int, int, int]:
    copies = sum(p.stat().st_size for p in (server.data_dir / "local-copies").glob("*.zip"))
    return (*store_on_disk(server), copies)


STORAGE = "{ storage { storedBytes blobCount restorePointCount localCopiesBytes capturedBytes } }"


async def test_storage_usage_is_what_is_on_disk(make_server, tmp_path: Path) -> None:
    server = make_server().start()

    async def usage() -> dict:
        return (await execute(server, STORAGE))["storage"]

    def expected(points: int) -> dict:
        count, stored, copies = on_disk(server)
        return {"storedBytes": stored, "blobCount": count, "restorePointCount": points, "localCopiesBytes": copies}

    async def captured() -> int:
        """The restore points' sizes added up, as the API lists them."""
        nodes = (await execute(server, "{ restorePoints(first: 100) { nodes { sizeBytes } } }"))["restorePoints"][
            "nodes"
        ]
        return sum(node["sizeBytes"] for node in nodes)

    async def usage_on_disk() -> dict:
        # Everything read from the disk, plus what the restore points hold before sharing.
        answer = await usage()
        assert answer.pop("capturedBytes") == await captured()
        return answer

    assert await usage() == {
        "storedBytes": 0,
        "blobCount": 0,
        "restorePointCount": 0,
        "localCopiesBytes": 0,
        "capturedBytes": 0,
    }
    point = (await create_and_wait(server, "measured"))["restorePoint"]
    first = await usage_on_disk()
    assert first == expected(1) and first["blobCount"] > 0 and first["storedBytes"] > 0

    started = await execute(
        server, "mutation($id: ID!) { exportRestorePoint(restorePointId: $id) { operation { id } } }", id=point["id"]
    )
    done = await wait_for_operation(server, started["exportRestorePoint"]["operation"]["id"])
    copy = await execute(server, "query($id: ID!) { operation(id: $id) { localCopy { id } } }", id=done["id"])
    exported = await usage_on_disk()
    assert exported == expected(1) and exported["localCopiesBytes"] > 0

    deleted = await execute(
        server, "mutation($id: ID!) { deleteRestorePoint(id: $id) { userErrors { code } } }", id=point["id"]
    )
    assert deleted["deleteRestorePoint"]["userErrors"] == []
    assert await usage_on_disk() == expected(0)
    imported = await execute(
        server,
        "mutation($id: ID!) { importLocalCopy(localCopyId: $id) { operation { id } } }",
        id=copy["operation"]["localCopy"]["id"],
    )
    await wait_for_operation(server, imported["importLocalCopy"]["operation"]["id"])
    again = await usage_on_disk()
    assert again == expected(1) and again["storedBytes"] == first["storedBytes"]
