"""A notification's delivery after its event: OPERATION_FAILED from a create whose folder source
is gone, sent by Apprise (`json://`) to a JSON webhook in this process (a threading
http.server on 127.0.0.1) that timestamps each POST; from the operation's finishedAt (the
server's clock, the same machine's) to the POST's arrival, p50 and p99. No peer: absolute."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from bench import api
from bench.context import BenchContext
from bench.report import Row
from bench.servers import RUNS, ServerProcess, fresh_dir, our_server, remove_dirs
from bench.sources import has_folder_sources

CREATE = 'mutation { createRestorePoint(label: "doomed") { operation { id } userErrors { message } } }'
PATH = "notification delivery after its event (OPERATION_FAILED, Apprise json:// to a local webhook)"
TARGET = "(no target in the issue: shown for the record)"


class Receiver:
    """A JSON webhook on a free loopback port: each POST's arrival time (time.time()) and body."""

    def __init__(self) -> None:
        self.received: list[tuple[float, dict[str, Any]]] = []
        self.arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                at = time.time()  # before the body is read: the request has arrived
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                with receiver.arrived:
                    receiver.received.append((at, body))
                    receiver.arrived.notify_all()

            def log_message(self, *_: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"json://127.0.0.1:{self._server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self._server.serve_forever, name="bench-receiver", daemon=True)
        self._thread.start()

    def wait_for(self, needle: str, timeout: float = 60) -> float:
        """When the first message whose text holds `needle` arrived."""
        deadline = time.monotonic() + timeout
        with self.arrived:
            while True:
                for at, body in self.received:
                    if needle in body.get("message", "") or needle in body.get("title", ""):
                        return at
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no notification naming {needle} within {timeout} s")
                self.arrived.wait(left)

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _p(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def _failed(server: ServerProcess) -> dict[str, Any]:
    """A create that fails (its folder is gone), once it has ended."""
    op_id = api.graphql(server, CREATE)["createRestorePoint"]["operation"]["id"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        op = api.graphql(server, api.OPERATION, id=op_id)["operation"]
        if op["done"]:
            if op["status"] != "FAILED":
                raise RuntimeError(f"the create with its folder gone ended {op['status']}")
            return op
        time.sleep(0.02)
    raise TimeoutError(f"operation {op_id} still running")


def run(ctx: BenchContext) -> list[Row]:
    if not has_folder_sources():
        return [
            Row(path=PATH, ours="-", peers="-", ratio="-", memory="-", target=TARGET, met=None, note="no folder source")
        ]
    remove_dirs(sorted(p.name for p in RUNS.glob("notifications-*") if p.is_dir()))
    samples = 20 if ctx.quick else 50
    scratch = fresh_dir("notifications-site")
    site = scratch / "site"
    site.mkdir()
    (site / "app.conf").write_text("volume = 3\n")
    delays: list[float] = []
    with Receiver() as receiver:
        config = RUNS / "notifications-sources.toml"
        config.write_text(
            f'[[sources]]\nname = "site"\nkind = "folder"\npath = "{site}"\n\n'
            f'[[notifications]]\nname = "bench"\nurl = "{receiver.url}"\nevents = ["OPERATION_FAILED"]\n'
        )
        # Fold 0: each message goes out when its event comes. With the default 60 s, the first
        # event after a quiet minute goes out as at once; later ones within the minute wait for
        # its end, folded (what the fold is for, not a delivery delay to measure).
        env = {"BACKUPS_CONFIG": str(config), "BACKUPS_NOTIFY_FOLD_SECONDS": "0"}
        with our_server("notifications-server", **env) as server:
            site.joinpath("app.conf").unlink()
            site.rmdir()
            for _ in range(samples):
                op = _failed(server)
                arrived = receiver.wait_for(op["id"])
                delays.append(arrived - datetime.fromisoformat(op["finishedAt"]).timestamp())
            count = len(receiver.received)
    remove_dirs([scratch.name])
    if count != samples:
        raise RuntimeError(f"{count} notifications arrived for {samples} failures (one each expected)")
    return [
        Row(
            path=PATH,
            ours=f"p50 {1000 * _p(delays, 0.5):.1f} ms, p99 {1000 * _p(delays, 0.99):.1f} ms",
            peers="(absolute)",
            ratio="-",
            memory="-",
            target=TARGET,
            met=None,
            numbers={"delays": delays},
            note=(
                f"{samples} failures, one at a time: a `createRestorePoint` whose only source, a folder, "
                "was removed after the server started fails; the next starts once its message has "
                "arrived. Measured from the operation's finishedAt (the server's clock) to the moment "
                "the webhook (a threading http.server in the bench process, on loopback) has the "
                "POST's headers; one message per failure was checked. The target has "
                "`BACKUPS_NOTIFY_FOLD_SECONDS=0`: with the default 60 s a message after a quiet minute "
                "goes out the same way, and what comes within the minute after it is held to its end "
                "and folded into one message. On the way: the end stored, the runner's listener "
                "queuing the notice, the target's task waking, a thread of the notification pool "
                "parsing the Apprise URL and sending with requests (a new connection each time), "
                "then the target's lastSentAt stored (after the POST, so not measured). "
                "`testNotification` is not used: it answers only after the delivery. The first sample "
                "is among the slowest in the runs seen (the pool's first thread and Apprise's first send, "
                "not profiled); with few samples p99 is the slowest, and on a loaded machine it follows "
                "the load (the sending thread and the event loop wait for a core). First figures "
                "(2026-12-07, the machine shared, load 5-20): 50 samples p50 11.2 ms, p99 204 ms; 20 "
                "samples p50 5.3-20 ms, p99 44-742 ms."
            ),
        )
    ]
