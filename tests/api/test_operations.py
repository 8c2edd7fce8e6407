"""Operations: cancel, dismiss, filters, restart survival, and subscribers that go away."""

from __future__ import annotations

import asyncio
import uuid

import httpx
from gql import Client, GraphQLRequest

from tests.support.api import (
    OPERATION_FIELDS,
    auth_headers,
    change_listeners,
    create_and_wait,
    create_restore_point,
    execute,
    subscribe,
    update_settings,
    wait_for_change_listeners,
    wait_for_operation,
    ws_transport,
)
from tests.support.blobs import stored_blobs
from tests.support.server_process import ServerProcess

PROGRESS = f"subscription($id: ID!) {{ operationProgress(id: $id) {{ {OPERATION_FIELDS} }} }}"
OPERATION = f"query($id: ID!) {{ operation(id: $id) {{ {OPERATION_FIELDS} log {{ sequence level message }} }} }}"
RESTORE_POINT_COUNT = "{ restorePoints { totalCount } }"


async def wait_until_running(server: ServerProcess, op_id: str) -> dict:
    """Follow the operation until it has made some progress, then stop listening."""
    async for event in subscribe(server, PROGRESS, id=op_id):
        state = event["operationProgress"]
        if state["status"] == "RUNNING" and state["progress"] > 0.05:
            return state
        assert not state["done"], f"finished before it could be watched: {state}"
    raise AssertionError("stream ended early")


async def test_cancel_mid_run_leaves_nothing_behind(slow_server: ServerProcess) -> None:
    # New content, so the create would have to store new blobs.
    await update_settings(slow_server, "network", {"hostname": f"host-{uuid.uuid4().hex[:8]}"})
    await update_settings(slow_server, "users", {"marker": uuid.uuid4().hex})
    count_before = (await execute(slow_server, RESTORE_POINT_COUNT))["restorePoints"]["totalCount"]
    blobs_before = stored_blobs(slow_server)

    op = await create_restore_point(slow_server, "to be cancelled")
    await asyncio.wait_for(wait_until_running(slow_server, op["id"]), 30)
    data = await execute(
        slow_server,
        f"mutation($id: ID!) {{ cancelOperation(id: $id) {{ operation {{ {OPERATION_FIELDS} }} userErrors {{ code }} }} }}",
        id=op["id"],
    )
    cancelled = data["cancelOperation"]["operation"]
    assert data["cancelOperation"]["userErrors"] == []
    assert cancelled["status"] == "CANCELLED" and cancelled["done"]
    assert cancelled["restorePoint"] is None

    count_after = (await execute(slow_server, RESTORE_POINT_COUNT))["restorePoints"]["totalCount"]
    assert count_after == count_before
    assert stored_blobs(slow_server) == blobs_before
    assert not list((slow_server.data_dir / "blobs" / "tmp").iterdir())

    final = (await execute(slow_server, OPERATION, id=op["id"]))["operation"]
    assert final["status"] == "CANCELLED"
    assert final["log"][-1]["message"].startswith("Cancelled")

    again = await execute(
        slow_server,
        "mutation($id: ID!) { cancelOperation(id: $id) { operation { id } userErrors { code message } } }",
        id=op["id"],
    )
    assert again["cancelOperation"]["userErrors"][0]["code"] == "INVALID_INPUT"


async def test_cancel_while_queued(make_server) -> None:
    proc = make_server(BACKUPS_TEST_ENTRY_DELAY="0.3", BACKUPS_MAX_CONCURRENT_OPERATIONS="1").start()
    running = await create_restore_point(proc, "runs")
    queued = await create_restore_point(proc, "waits")
    state = (await execute(proc, OPERATION, id=queued["id"]))["operation"]
    assert state["status"] == "QUEUED"
    data = await execute(
        proc,
        "mutation($id: ID!) { cancelOperation(id: $id) { operation { status startedAt } userErrors { code } } }",
        id=queued["id"],
    )
    assert data["cancelOperation"]["operation"] == {"status": "CANCELLED", "startedAt": None}
    assert (await wait_for_operation(proc, running["id"]))["status"] == "SUCCEEDED"


async def test_dismiss_hides_finished_operation(server: ServerProcess) -> None:
    final = await create_and_wait(server, "to dismiss")
    dismiss = f"mutation($id: ID!) {{ dismissOperation(id: $id) {{ operation {{ {OPERATION_FIELDS} }} userErrors {{ code field }} }} }}"
    data = await execute(server, dismiss, id=final["id"])
    assert data["dismissOperation"]["operation"]["dismissed"] is True

    listing = "query($all: Boolean) { operations(first: 100, includeDismissed: $all) { nodes { id dismissed } } }"
    visible = {n["id"] for n in (await execute(server, listing, all=False))["operations"]["nodes"]}
    everything = {n["id"] for n in (await execute(server, listing, all=True))["operations"]["nodes"]}
    assert final["id"] not in visible
    assert final["id"] in everything

    missing = await execute(server, dismiss, id="op_doesnotexist")
    assert missing["dismissOperation"]["userErrors"] == [{"code": "NOT_FOUND", "field": "id"}]


async def test_dismiss_running_operation_is_refused(slow_server: ServerProcess) -> None:
    op = await create_restore_point(slow_server)
    data = await execute(
        slow_server,
        "mutation($id: ID!) { dismissOperation(id: $id) { operation { id } userErrors { code message } } }",
        id=op["id"],
    )
    assert data["dismissOperation"]["operation"] is None
    assert data["dismissOperation"]["userErrors"][0]["code"] == "INVALID_INPUT"
    assert "running" in data["dismissOperation"]["userErrors"][0]["message"]
    state = await wait_for_operation(slow_server, op["id"])
    assert state["dismissed"] is False and state["status"] == "SUCCEEDED"


async def test_dismiss_all_hides_every_finished_operation_and_keeps_running_ones(make_server) -> None:
    proc = make_server(BACKUPS_TEST_ENTRY_DELAY="0.1").start()
    finished = [(await create_and_wait(proc, f"done {n}"))["id"] for n in range(2)]
    running = await create_restore_point(proc, "still running")
    await asyncio.wait_for(wait_until_running(proc, running["id"]), 30)
    dismiss_all = "mutation { dismissFinishedOperations { dismissedIds userErrors { code } } }"

    async def told_dismissed() -> set[str]:
        # includeCurrent sends the running operation first: from then on, no event is missed.
        seen: set[str] = set()
        async for event in subscribe(
            proc, f"subscription {{ operationsChanged(includeCurrent: true) {{ {OPERATION_FIELDS} }} }}"
        ):
            op = event["operationsChanged"]
            if op["id"] == running["id"] and not seen and not op["done"]:
                seen.add("subscribed")
                answer = await execute(proc, dismiss_all)
                assert answer["dismissFinishedOperations"]["userErrors"] == []
                assert sorted(answer["dismissFinishedOperations"]["dismissedIds"]) == sorted(finished)
            elif op["dismissed"]:
                seen.add(op["id"])
            if seen >= {"subscribed", *finished}:
                return seen - {"subscribed"}
        raise AssertionError("stream ended early")

    assert await asyncio.wait_for(told_dismissed(), 30) == set(finished)
    listing = "{ operations(first: 100) { nodes { id dismissed } } }"
    assert [n["id"] for n in (await execute(proc, listing))["operations"]["nodes"]] == [running["id"]]
    final = await wait_for_operation(proc, running["id"])
    assert final["status"] == "SUCCEEDED" and final["dismissed"] is False
    again = await execute(proc, dismiss_all)  # the one finished since goes too; nothing else is left
    assert again["dismissFinishedOperations"]["dismissedIds"] == [running["id"]]
    assert (await execute(proc, listing))["operations"]["nodes"] == []


async def test_operations_filter_by_status_and_kind(make_server) -> None:
    proc = make_server().start()
    done = await create_and_wait(proc)
    query = """query($status: [OperationStatus!], $kind: [OperationKind!]) {
        operations(status: $status, kind: $kind) { totalCount nodes { id status kind } } }"""
    succeeded = (await execute(proc, query, status=["SUCCEEDED"]))["operations"]
    assert [n["id"] for n in succeeded["nodes"]] == [done["id"]]
    assert (await execute(proc, query, status=["FAILED", "CANCELLED"]))["operations"]["totalCount"] == 0
    assert (await execute(proc, query, kind=["CREATE_RESTORE_POINT"]))["operations"]["totalCount"] == 1
    assert (await execute(proc, query, kind=["IMPORT_LOCAL_COPY"]))["operations"]["totalCount"] == 0


async def _interrupted_after(proc: ServerProcess, stop) -> None:
    op = await create_restore_point(proc, "interrupted")
    await asyncio.wait_for(wait_until_running(proc, op["id"]), 30)
    await asyncio.to_thread(stop)
    proc.start()
    state = (await execute(proc, OPERATION, id=op["id"]))["operation"]
    assert state["status"] == "INTERRUPTED" and state["done"]
    assert state["error"]["code"] == "INTERRUPTED"
    assert "Interrupted" in state["log"][-1]["message"]
    assert state["log"][-1]["level"] in ("WARNING", "ERROR")
    numbers = [line["sequence"] for line in state["log"]]
    if stop == proc.stop:  # a graceful stop stores every line
        assert numbers == list(range(1, len(numbers) + 1))
    else:  # after a crash the last line is numbered after what the dead run may have shown
        # (which may be every line: killed before the first batch was stored, it has only this one)
        assert numbers[:-1] == list(range(1, len(numbers))) and numbers[-1] >= len(numbers), numbers
    running = await execute(proc, "{ operations(status: [QUEUED, RUNNING]) { totalCount } }")
    assert running["operations"]["totalCount"] == 0
    assert (await execute(proc, RESTORE_POINT_COUNT))["restorePoints"]["totalCount"] == 0
    assert not list((proc.data_dir / "blobs" / "tmp").iterdir())


async def test_server_killed_mid_operation_shows_interrupted(make_server_process) -> None:
    proc = make_server_process(BACKUPS_TEST_ENTRY_DELAY="0.3").start()
    await _interrupted_after(proc, proc.kill)
    assert stored_blobs(proc) == set()  # the start-up sweep removed what the dead run wrote


async def test_server_stopped_gracefully_mid_operation_shows_interrupted(make_server) -> None:
    proc = make_server(BACKUPS_TEST_ENTRY_DELAY="0.3").start()
    await _interrupted_after(proc, proc.stop)


async def test_disconnecting_subscribers_leave_nothing_behind(slow_server: ServerProcess) -> None:
    health = f"{slow_server.url}/health"
    baseline = httpx.get(health, headers=auth_headers(slow_server)).json()
    op = await create_restore_point(slow_server, "watched then dropped")
    all_registered = asyncio.Event()

    async def watch_and_drop() -> None:
        transport = ws_transport(slow_server)
        async with Client(transport=transport) as session:
            progress = session.subscribe(GraphQLRequest(PROGRESS, variable_values={"id": op["id"]}))
            await anext(progress)
            changes = session.subscribe(GraphQLRequest("subscription { operationsChanged { id } }"))
            task = asyncio.ensure_future(anext(changes))
            await all_registered.wait()  # all five are live on the server when they go
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await progress.aclose()
            # The connection closes here, with the subscriptions still live on the server.

    async def when_registered() -> None:
        await wait_for_change_listeners(slow_server, baseline["operations"]["changeListeners"] + 5)
        all_registered.set()

    await asyncio.gather(when_registered(), *(watch_and_drop() for _ in range(5)))
    await wait_for_operation(slow_server, op["id"])

    for _ in range(100):
        now = httpx.get(health, headers=auth_headers(slow_server)).json()
        if now["tasks"] <= baseline["tasks"] and now["operations"]["changeListeners"] == 0:
            break
        await asyncio.sleep(0.1)
    assert now["operations"] == {"running": 0, "changeListeners": 0, "waiters": 0}
    assert now["tasks"] <= baseline["tasks"], (baseline, now)


async def test_operations_changed_reports_lifecycle(server: ServerProcess) -> None:
    seen: list[dict] = []

    async def listen() -> None:
        async for event in subscribe(server, "subscription { operationsChanged { id status dismissed } }"):
            seen.append(event["operationsChanged"])
            if event["operationsChanged"]["dismissed"]:
                return

    before = await change_listeners(server)
    listener = asyncio.ensure_future(listen())
    await wait_for_change_listeners(server, before + 1)  # the subscription is registered
    final = await create_and_wait(server, "announced")
    await execute(server, "mutation($id: ID!) { dismissOperation(id: $id) { userErrors { code } } }", id=final["id"])
    await asyncio.wait_for(listener, 20)
    mine = [e for e in seen if e["id"] == final["id"]]
    statuses = [e["status"] for e in mine]
    assert "SUCCEEDED" in statuses
    assert mine[-1]["dismissed"] is True
