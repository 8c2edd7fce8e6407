"""Creating, listing and deleting restore points through the real server."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

from sqlalchemy import create_engine, text

from server.model.manifests import manifest_id
from tests.support.api import (
    OPERATION_FIELDS,
    create_and_wait,
    create_restore_point,
    execute,
    subscribe,
    update_settings,
    wait_for_operation,
)
from tests.support.blobs import stored_blobs
from tests.support.server_process import ServerProcess

PROGRESS = f"subscription($id: ID!) {{ operationProgress(id: $id) {{ {OPERATION_FIELDS} }} }}"
LOG = """subscription($id: ID!, $after: Int) {
    operationLog(id: $id, afterSequence: $after) { sequence at level message } }"""


async def test_create_flow_streams_progress_and_log_while_running(slow_server: ServerProcess) -> None:
    op = await create_restore_point(slow_server, "watched", "made by the create-flow test")
    assert op["status"] in ("QUEUED", "RUNNING")
    assert op["kind"] == "CREATE_RESTORE_POINT"

    async def progress() -> list[dict]:
        return [e["operationProgress"] async for e in subscribe(slow_server, PROGRESS, id=op["id"])]

    async def log() -> list[dict]:
        return [e["operationLog"] async for e in subscribe(slow_server, LOG, id=op["id"], after=0)]

    states, lines = await asyncio.wait_for(asyncio.gather(progress(), log()), 60)

    values = [s["progress"] for s in states]
    assert values == sorted(values), "progress went backwards"
    assert any(0 < v < 1 for v in values), f"no progress seen mid-run: {values}"
    assert {s["status"] for s in states} >= {"RUNNING", "SUCCEEDED"}
    final = states[-1]
    assert final["status"] == "SUCCEEDED" and final["done"] and final["progress"] == 1.0
    assert final["restorePoint"]["label"] == "watched"
    assert [line["sequence"] for line in lines] == list(range(1, len(lines) + 1))
    assert lines[-1]["message"] == "Finished."
    assert len(lines) == final["lastSequence"]

    data = await execute(
        slow_server,
        """query($id: ID!) { restorePoint(id: $id) { id label note origin createdAt createdBy
            sizeBytes storedBytes itemCount checksum serverVersion entries { source path sizeBytes sha256 } } }""",
        id=final["restorePoint"]["id"],
    )
    point = data["restorePoint"]
    assert point["note"] == "made by the create-flow test"
    assert point["origin"] == "MANUAL"
    assert point["itemCount"] == len(point["entries"]) >= 5
    assert point["sizeBytes"] == sum(e["sizeBytes"] for e in point["entries"])
    assert all(e["source"] == "settings" and len(e["sha256"]) == 64 for e in point["entries"])
    assert datetime.fromisoformat(point["createdAt"]).tzinfo is not None


async def test_late_subscriber_replays_whole_log_then_completes(server: ServerProcess) -> None:
    final = await create_and_wait(server, "late")
    lines = [e["operationLog"] async for e in subscribe(server, LOG, id=final["id"], after=0)]
    assert [line["sequence"] for line in lines] == list(range(1, final["lastSequence"] + 1))
    assert lines[0]["message"].startswith("Queued")
    assert lines[-1]["message"] == "Finished."

    tail = [e["operationLog"] async for e in subscribe(server, LOG, id=final["id"], after=3)]
    assert [line["sequence"] for line in tail] == list(range(4, final["lastSequence"] + 1))

    states = [e["operationProgress"] async for e in subscribe(server, PROGRESS, id=final["id"])]
    assert len(states) == 1 and states[0]["status"] == "SUCCEEDED"


async def test_two_creates_at_once_both_succeed_and_share_content(server: ServerProcess) -> None:
    first, second = await asyncio.gather(create_restore_point(server, "twin A"), create_restore_point(server, "twin B"))
    finals = await asyncio.gather(wait_for_operation(server, first["id"]), wait_for_operation(server, second["id"]))
    assert [f["status"] for f in finals] == ["SUCCEEDED", "SUCCEEDED"]
    ids = {f["restorePoint"]["id"] for f in finals}
    assert len(ids) == 2
    points = [
        (await execute(server, "query($id: ID!) { restorePoint(id: $id) { checksum storedBytes sizeBytes } }", id=i))[
            "restorePoint"
        ]
        for i in ids
    ]
    assert points[0]["checksum"] == points[1]["checksum"]
    # Same content: at most one of them stored new bytes.
    assert min(p["storedBytes"] for p in points) == 0


async def test_unchanged_settings_store_no_new_bytes(server: ServerProcess) -> None:
    await create_and_wait(server)
    again = await create_and_wait(server)
    point = (
        await execute(
            server,
            "query($id: ID!) { restorePoint(id: $id) { storedBytes sizeBytes } }",
            id=again["restorePoint"]["id"],
        )
    )["restorePoint"]
    assert point["storedBytes"] == 0 and point["sizeBytes"] > 0


async def test_default_label_and_validation(server: ServerProcess) -> None:
    final = await create_and_wait(server)
    assert final["restorePoint"]["label"].startswith("Restore point 20")
    data = await execute(
        server,
        "mutation($l: String) { createRestorePoint(label: $l) { operation { id } userErrors { code field message } } }",
        l="x" * 201,
    )
    assert data["createRestorePoint"]["operation"] is None
    assert data["createRestorePoint"]["userErrors"][0]["code"] == "INVALID_INPUT"
    assert data["createRestorePoint"]["userErrors"][0]["field"] == "label"


async def test_pagination_over_three_pages(make_server) -> None:
    proc = make_server().start()
    for index in range(5):
        await create_and_wait(proc, f"page test {index}")
    query = """query($first: Int, $after: String) { restorePoints(first: $first, after: $after) {
        totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
        edges { cursor node { id label createdAt } } } }"""
    seen: list[dict] = []
    after = None
    pages = 0
    while True:
        page = (await execute(proc, query, first=2, after=after))["restorePoints"]
        pages += 1
        assert page["totalCount"] == 5
        assert page["pageInfo"]["hasPreviousPage"] == (after is not None)
        seen.extend(edge["node"] for edge in page["edges"])
        assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert pages == 3
    assert [p["label"] for p in seen] == [f"page test {i}" for i in range(4, -1, -1)]
    assert len({p["id"] for p in seen}) == 5

    errors = await execute_errors_of(proc, query, first=2, after="not-a-cursor")
    assert errors[0]["extensions"]["code"] == "INVALID_INPUT"
    errors = await execute_errors_of(proc, query, first=1000)
    assert errors[0]["extensions"]["code"] == "INVALID_INPUT"


async def execute_errors_of(proc: ServerProcess, query: str, **variables) -> list[dict]:
    from tests.support.api import execute_errors

    return await execute_errors(proc, query, **variables)


async def test_byte_count_above_32_bits(server: ServerProcess) -> None:
    """A restore point of 5 GiB: the size must come back exact, not overflow Int."""
    huge = 5 * 2**30
    point_id = f"rp_{uuid.uuid4().hex[:24]}"
    empty = manifest_id([])  # no entries: only the sizes are read
    engine = create_engine(server.database.url)  # the server's own database
    with engine.begin() as connection:
        if connection.execute(text("SELECT 1 FROM manifest WHERE id = :id"), {"id": empty}).first() is None:
            connection.execute(text("INSERT INTO manifest (id) VALUES (:id)"), {"id": empty})
        connection.execute(
            text(
                "INSERT INTO restore_point (id, label, note, origin, created_at, created_by, size_bytes,"
                " stored_bytes, item_count, checksum, server_version, manifest_id) VALUES (:id, 'huge', NULL,"
                " 'IMPORTED', :at, NULL, :size, :size, 1, :sum, 'test', :manifest)"
            ),
            {"id": point_id, "at": datetime(2020, 1, 1, tzinfo=UTC), "size": huge, "sum": "0" * 64, "manifest": empty},
        )
    engine.dispose()
    data = await execute(server, "query($id: ID!) { restorePoint(id: $id) { sizeBytes storedBytes } }", id=point_id)
    assert data["restorePoint"] == {"sizeBytes": huge, "storedBytes": huge}
    assert huge > 2**31


async def test_delete_frees_only_unshared_blobs(make_server) -> None:
    proc = make_server().start()
    base = await create_and_wait(proc, "base")
    before = stored_blobs(proc)
    await update_settings(proc, "audio", {"masterVolume": -3.0, "marker": uuid.uuid4().hex})
    changed = await create_and_wait(proc, "changed")
    with_both = stored_blobs(proc)
    assert len(with_both - before) == 1  # only the audio module's document is new

    data = await execute(
        proc,
        "mutation($id: ID!) { deleteRestorePoint(id: $id) { deletedId userErrors { code } } }",
        id=changed["restorePoint"]["id"],
    )
    assert data["deleteRestorePoint"] == {"deletedId": changed["restorePoint"]["id"], "userErrors": []}
    assert stored_blobs(proc) == before
    gone = await execute(proc, "query($id: ID!) { restorePoint(id: $id) { id } }", id=changed["restorePoint"]["id"])
    assert gone["restorePoint"] is None
    still = await execute(proc, "query($id: ID!) { restorePoint(id: $id) { id } }", id=base["restorePoint"]["id"])
    assert still["restorePoint"]["id"] == base["restorePoint"]["id"]
