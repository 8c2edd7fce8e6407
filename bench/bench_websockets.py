"""1,000 websocket clients following one operation's log: every client must get every line;
measured is the time from a line's append on the server (its `at`) to its arrival.

The operation is made slow and chatty with the test-only BACKUPS_TEST_ENTRY_DELAY (a pause
and a log line after each item) and extra settings modules inserted into the database. To
measure live delivery rather than replay, it waits QUEUED behind a blocker operation (one
operation at a time) until every client has subscribed; then the blocker is cancelled.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime

from websockets.asyncio.client import connect

from bench import api
from bench.context import BenchContext
from bench.measure import RssSampler, median
from bench.report import Row, mb
from bench.seed_rows import insert_modules
from bench.servers import our_server

CLIENTS = 1000
EXTRA_MODULES = 33  # with the 7 seeded ones: 40 items, one log line each
ENTRY_DELAY = 0.25  # about 4 lines a second, each to every client
LOG = "subscription($id: ID!) { operationLog(id: $id) { sequence at message } }"
CREATE = 'mutation { createRestorePoint(label: "watched") { operation { id } userErrors { message } } }'


async def _client(
    ws_url: str, token: str | None, op_id: str, subscribed: asyncio.Event, lines: list, ready: list
) -> None:
    async with connect(ws_url, subprotocols=["graphql-transport-ws"], open_timeout=60, max_queue=None) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}))
        while json.loads(await ws.recv())["type"] != "connection_ack":
            pass
        await ws.send(
            json.dumps({"id": "1", "type": "subscribe", "payload": {"query": LOG, "variables": {"id": op_id}}})
        )
        async for raw in ws:
            arrived = time.time()
            message = json.loads(raw)
            if message["type"] == "next":
                entry = message["payload"]["data"]["operationLog"]
                lines.append((entry["sequence"], entry["at"], arrived))
                if len(lines) == 1:
                    ready.append(arrived)
                    if len(ready) == CLIENTS:
                        subscribed.set()
            elif message["type"] == "ping":
                await ws.send(json.dumps({"type": "pong"}))
            elif message["type"] in ("complete", "error"):
                return


async def _follow(server, op_id: str, blocker: str) -> tuple[list[list], float]:  # type: ignore[no-untyped-def]
    subscribed = asyncio.Event()
    ready: list[float] = []
    received: list[list] = [[] for _ in range(CLIENTS)]
    gate = asyncio.Semaphore(50)  # open connections 50 at a time, as a crowd of browsers would

    async def one(index: int) -> None:
        async with gate:
            pass
        await _client(server.ws_url, server.token, op_id, subscribed, received[index], ready)

    tasks = [asyncio.create_task(one(i)) for i in range(CLIENTS)]
    await asyncio.wait_for(subscribed.wait(), 120)
    live_from = time.time()
    await asyncio.to_thread(
        api.graphql, server, "mutation($id: ID!) { cancelOperation(id: $id) { operation { status } } }", id=blocker
    )
    await asyncio.wait_for(asyncio.gather(*tasks), 180)
    return received, live_from


def _one_run(ctx: BenchContext, index: int) -> dict:
    env = {"BACKUPS_TEST_ENTRY_DELAY": str(ENTRY_DELAY), "BACKUPS_MAX_CONCURRENT_OPERATIONS": "1"}
    with our_server(f"websockets-{index}", **env) as server:
        insert_modules(server.data_dir / "backups.db", EXTRA_MODULES)
        blocker = api.graphql(server, CREATE)["createRestorePoint"]["operation"]["id"]
        op_id = api.graphql(server, CREATE)["createRestorePoint"]["operation"]["id"]
        with RssSampler(server.process.pid) as rss:  # type: ignore[union-attr]
            received, live_from = asyncio.run(_follow(server, op_id, blocker))
        final = api.graphql(server, "query($id: ID!) { operation(id: $id) { status log { sequence } } }", id=op_id)
    expected = [line["sequence"] for line in final["operation"]["log"]]
    complete = sum(1 for lines in received if [s for s, _, _ in lines] == expected)
    latencies = sorted(
        (arrived - datetime.fromisoformat(at).timestamp()) * 1000
        for lines in received
        for _seq, at, arrived in lines
        if datetime.fromisoformat(at).timestamp() >= live_from
    )
    p99 = latencies[int(len(latencies) * 0.99) - 1] if latencies else float("nan")
    return {
        "status": final["operation"]["status"],
        "lines": len(expected),
        "complete_clients": complete,
        "live_deliveries": len(latencies),
        "p50_ms": latencies[len(latencies) // 2] if latencies else float("nan"),
        "p99_ms": p99,
        "peak_rss": rss.peak,
        "start_rss": rss.start,
    }


def run(ctx: BenchContext) -> list[Row]:
    runs = [_one_run(ctx, i) for i in range(max(1, ctx.runs - 1))]
    p99 = median([r["p99_ms"] for r in runs])
    peak = max(r["peak_rss"] for r in runs)
    all_lines = all(r["complete_clients"] == CLIENTS for r in runs)
    return [
        Row(
            path=f"{CLIENTS:,} websocket clients on one operation's log",
            ours=(
                f"{min(r['complete_clients'] for r in runs):,}/{CLIENTS:,} clients got all {runs[0]['lines']} lines; "
                f"p50 {median([r['p50_ms'] for r in runs]):.1f} ms, p99 {p99:.1f} ms append-to-delivery"
            ),
            peers="(absolute)",
            ratio="-",
            memory=f"server peak RSS {mb(peak)}",
            target="every client every line; p99 < 100 ms; RSS < 500 MB",
            note=(
                "a line reaches 1,000 sockets from one event loop: each event is executed and its "
                "JSON encoded once per (document, variables, role) and shared, so a delivery is the "
                "wake-up of the subscriber's stream, Strawberry's per-event steps and one websocket "
                "write (the writes are about a third of the loop's time). A line reaches its last client "
                "~70 ms after its append (median over lines), so the p99 is that last wait, and it rises with CPU "
                "contention: the 1,000 clients run in one Python process on the same 2 cores, and "
                "other work on the machine slows both. Full garbage collections (150-400 ms with 1,000 "
                "connections) no longer land mid fan-out (server/gc_tuning.py), and followers that lag "
                "a flush read memory, not the database."
            ),
            met=all_lines and p99 < 100 and peak < 500 * 1024 * 1024,
            numbers={"runs": runs},
        )
    ]
