"""BACKUPS_HEARTBEAT_URL: a scheduled run's success pings the URL, a failed run its `/fail`
variant, and a watcher that is dead or never answers delays and fails nothing. The schedules
fire at their cron time on the test clock (as in test_schedules.py), the pings reach a real
HTTP receiver on loopback."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import pytest

from tests.support.api import create_and_wait
from tests.support.in_process import InProcessServer
from tests.support.ping_receiver import PingReceiver
from tests.support.schedules import at, create_schedule, eventually, operations_by, read_schedule, settled
from tests.support.server_process import free_port
from tests.support.silent_endpoint import SilentEndpoint

T = TypeVar("T")


def site_server(make_server: Callable[..., InProcessServer], tmp_path: Path, **env: str) -> InProcessServer:
    """A server with one folder source, "site", and a scheduler polling its clock every 50 ms."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "app.conf").write_text("volume = 3\n")
    config = tmp_path / "backups.toml"
    config.write_text(f'[[sources]]\nname = "site"\nkind = "directory"\npath = "{site}"\n')
    return make_server(BACKUPS_CONFIG=str(config), BACKUPS_SCHEDULER_POLL_SECONDS="0.05", **env).start()


def advance_past(server: InProcessServer, moment: str) -> None:
    """Move the server's clock just past `moment` (a schedule's nextRunAt)."""
    now = datetime.fromtimestamp(server.clock.time(), UTC)
    server.clock.advance((at(moment) - now).total_seconds() + 1)


async def fire(server: InProcessServer, schedule: dict[str, str], runs: int) -> dict[str, str]:
    """Let the schedule come due on the clock; its newest run, once all `runs` have ended."""
    current = await read_schedule(server, schedule["id"])
    assert current is not None
    advance_past(server, current["nextRunAt"])
    return (await settled(server, schedule["name"], runs))[0]


async def test_a_scheduled_success_pings_the_url_and_a_failure_its_fail_variant(
    make_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    with PingReceiver() as receiver:
        server = site_server(make_server, tmp_path, BACKUPS_HEARTBEAT_URL=f"{receiver.url}/ping/nightly-check")
        schedule = await create_schedule(server, name="nightly", cron="30 2 * * *", timeZone="UTC")
        assert receiver.requests == [], "creating a schedule pings nothing"
        # A restore point made by hand is no scheduled run: no ping (the next scheduled one comes first).
        assert (await create_and_wait(server, "by hand"))["status"] == "SUCCEEDED"

        run = await fire(server, schedule, 1)
        assert run["status"] == "SUCCEEDED"
        await eventually(lambda: _async(len(receiver.requests) >= 1))
        assert receiver.requests == [("GET", "/ping/nightly-check")]

        shutil.rmtree(tmp_path / "site")  # the source is gone: the next run fails
        run = await fire(server, schedule, 2)
        assert run["status"] == "FAILED"
        await eventually(lambda: _async(len(receiver.requests) >= 2))
        assert receiver.requests == [("GET", "/ping/nightly-check"), ("GET", "/ping/nightly-check/fail")]
        assert len(await operations_by(server, "nightly")) == 2


async def test_uptime_kuma_push_urls_say_down_on_failure(
    make_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    with PingReceiver() as receiver:
        url = f"{receiver.url}/api/push/Kx3Token?status=up&msg=OK&ping="
        server = site_server(make_server, tmp_path, BACKUPS_HEARTBEAT_URL=url)
        schedule = await create_schedule(server, name="nightly", cron="30 2 * * *", timeZone="UTC")
        shutil.rmtree(tmp_path / "site")
        assert (await fire(server, schedule, 1))["status"] == "FAILED"
        await eventually(lambda: _async(receiver.requests))
        assert receiver.requests == [("GET", "/api/push/Kx3Token?status=down&msg=OK&ping=")]


async def test_a_dead_watcher_fails_nothing_and_its_secrets_stay_out_of_the_log(
    make_server: Callable[..., InProcessServer], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="server.services.schedules.heartbeat")
    port = free_port()  # nothing listens there
    url = f"http://watch:pa55word@127.0.0.1:{port}/ping/abc?key=t0ken-s3cret"
    server = site_server(make_server, tmp_path, BACKUPS_HEARTBEAT_URL=url)
    schedule = await create_schedule(server, name="nightly", cron="30 2 * * *", timeZone="UTC")
    run = await fire(server, schedule, 1)
    assert run["status"] == "SUCCEEDED" and run["error"] is None
    said = await eventually(lambda: _async([r.getMessage() for r in caplog.records if "heartbeat" in r.getMessage()]))
    assert said == [f"heartbeat http://***@127.0.0.1:{port}/ping/abc?*** could not be sent: ConnectError"]
    assert not any("pa55word" in r.getMessage() or "t0ken-s3cret" in r.getMessage() for r in caplog.records)
    assert (await read_schedule(server, schedule["id"]) or {}).get("lastSuccessAt") is not None


async def test_a_watcher_that_never_answers_holds_up_nothing(
    make_server: Callable[..., InProcessServer], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="server.services.schedules.heartbeat")
    with SilentEndpoint() as silent:
        # A long timeout: the run, its success and its retention prune all end while the ping waits.
        server = site_server(
            make_server, tmp_path, BACKUPS_HEARTBEAT_URL=f"{silent.url}/ping", BACKUPS_HEARTBEAT_TIMEOUT_SECONDS="300"
        )
        schedule = await create_schedule(
            server, name="nightly", cron="30 2 * * *", timeZone="UTC", retention={"keepLast": 1}
        )
        assert (await fire(server, schedule, 1))["status"] == "SUCCEEDED"
        server.clock.advance(3600)
        assert (await fire(server, schedule, 2))["status"] == "SUCCEEDED"

        async def pruned() -> bool:
            ops = await operations_by(server, "nightly")
            return any(op["kind"] == "PRUNE_RESTORE_POINTS" and op["status"] == "SUCCEEDED" for op in ops)

        await eventually(pruned)
        await eventually(lambda: _async(silent.accepted >= 2))
        assert not [r for r in caplog.records if "heartbeat" in r.getMessage()], "both pings still wait"


async def _async(value: T) -> T:
    return value
