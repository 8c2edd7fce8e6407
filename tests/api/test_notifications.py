"""Notifications through the real server to real receivers: a JSON webhook on loopback gets each
event from its real cause (a source gone, a schedule's run failing, an apply, an after-change
restore point, an overdue backup); a target that never answers or refuses delays nothing and
says why in lastError; secrets never show; a burst is folded; testNotification."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from email import message_from_bytes
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope

from tests.support.api import (
    Target,
    create_and_wait,
    create_restore_point,
    execute,
    update_settings,
    wait_for_operation,
)
from tests.support.apply import start_apply
from tests.support.in_process import InProcessServer
from tests.support.notify_receiver import Receiver
from tests.support.schedules import RUN, create_schedule, eventually, far_off_cron, settled
from tests.support.server_process import ServerCommon, ServerProcess, free_port
from tests.support.silent_endpoint import SilentEndpoint

S = TypeVar("S", bound=ServerCommon)
ROOT = Path(__file__).resolve().parents[2]
HOST = socket.gethostname()
SECRET = "hunter2-Pa55word"
TOKEN = "tok3n-in-a-header"
TARGETS = "{ notificationTargets { name url events lastSentAt lastError } }"
TEST = """mutation($name: String!) { testNotification(name: $name) {
    delivered error userErrors { code message field } } }"""
PUBLIC = "https://backups.example.net/"


def target(name: str, url: str, events: list[str] | None = None) -> str:
    listed = "" if events is None else "events = [" + ", ".join(f'"{e}"' for e in events) + "]\n"
    return f'\n[[notifications]]\nname = "{name}"\nurl = "{url}"\n{listed}'


def notifying_server(make_server: Callable[..., S], tmp_path: Path, *targets: str, **env: str) -> S:
    """A server with the settings store and a folder source `site`, and these targets."""
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "app.conf").write_text("volume = 3\n")
    config = tmp_path / "backups.toml"
    config.write_text(
        '[[sources]]\nname = "settings"\nkind = "settings"\n\n'
        f'[[sources]]\nname = "site"\nkind = "folder"\npath = "{site}"\n' + "".join(targets)
    )
    return make_server(
        **{
            "BACKUPS_CONFIG": str(config),
            "BACKUPS_SCHEDULER_POLL_SECONDS": "0.05",
            "BACKUPS_NOTIFY_FOLD_SECONDS": "0",
            "BACKUPS_NOTIFY_RETRY_SECONDS": "0",
            "BACKUPS_NOTIFY_TIMEOUT_SECONDS": "5",
            **env,
        }
    ).start()


async def targets(server: Target) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in (await execute(server, TARGETS))["notificationTargets"]}


async def received(receiver: Receiver, needle: str, timeout: float = 20) -> dict[str, Any]:
    """The first message whose title holds `needle`, once it has arrived."""

    async def check() -> dict[str, Any] | None:
        return next((m for m in receiver.messages if needle in m.get("title", "")), None)

    return await eventually(check, timeout=timeout)


async def failing_create(server: Target, tmp_path: Path) -> dict[str, Any]:
    """A restore point whose folder source is gone: the operation fails."""
    shutil.rmtree(tmp_path / "site", ignore_errors=True)
    op = await create_restore_point(server, "doomed")
    final = await wait_for_operation(server, op["id"])
    assert final["status"] == "FAILED", final
    return final


async def test_a_failed_operation_and_the_health_it_changes_reach_the_webhook(
    make_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    with Receiver() as receiver:
        server = notifying_server(
            make_server,
            tmp_path,
            target("ops", receiver.url(), ["OPERATION_FAILED", "HEALTH_CHANGED"]),
            BACKUPS_PUBLIC_URL=PUBLIC,
        )
        schedule = await create_schedule(server, name="nightly", cron=far_off_cron())
        shutil.rmtree(tmp_path / "site")
        payload = (await execute(server, RUN, id=schedule["id"]))["runSchedule"]
        assert payload["userErrors"] == []
        (run,) = await settled(server, "nightly", 1)
        assert run["status"] == "FAILED"

        failed = await received(receiver, "create restore point failed")
        assert failed["title"] == f"{HOST}: create restore point failed"
        assert run["id"] in failed["message"] and run["error"]["code"] in failed["message"]
        assert "requested by schedule:nightly" in failed["message"]
        assert failed["message"].endswith(f"\n{PUBLIC}") and failed["type"] == "failure"
        assert len(failed["message"]) < 700  # a phone's screen

        health = await received(receiver, "backup health CRITICAL")
        assert health["title"] == f"{HOST}: backup health CRITICAL"
        assert "(was OK)" in health["message"] and "schedule 'nightly'" in health["message"]

        ops = (await targets(server))["ops"]
        assert ops["url"] == receiver.url() and ops["events"] == ["OPERATION_FAILED", "HEALTH_CHANGED"]
        assert ops["lastSentAt"] is not None and ops["lastError"] is None


async def test_an_apply_is_told_with_who_applied_what(
    make_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    with Receiver() as receiver:
        server = notifying_server(
            make_server, tmp_path, target("ops", receiver.url(), ["APPLY_FINISHED"]), BACKUPS_SERVER_NAME="venue-7"
        )
        point = (await create_and_wait(server, "before the change"))["restorePoint"]
        assert (await update_settings(server, "audio", {"masterVolume": 7}))["userErrors"] == []
        op = await start_apply(server, point["id"])
        assert (await wait_for_operation(server, op["id"]))["status"] == "SUCCEEDED"

        applied = await received(receiver, "restore point applied")
        assert applied["title"] == "venue-7: restore point applied", "named by BACKUPS_SERVER_NAME"
        assert f"applied restore point 'before the change' ({point['id']})" in applied["message"]
        assert "1 changed" in applied["message"] and op["id"] in applied["message"]
        assert op["requestedBy"] and applied["message"].startswith(op["requestedBy"])
        assert receiver.titles() == [applied["title"]], "no other event was asked for"


async def test_an_after_change_restore_point_tells_what_changed(
    make_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    quiet = 600
    with Receiver() as receiver:
        server = notifying_server(
            make_server,
            tmp_path,
            target("ops", receiver.url(), ["CONFIGURATION_CHANGED"]),
            BACKUPS_CHANGE_CHECK_SECONDS="86400",  # only the settings store's own note sees the change
        )
        await create_and_wait(server, "baseline")
        await create_schedule(server, name="on-change", afterChangeQuietSeconds=quiet)
        assert (await update_settings(server, "audio", {"masterVolume": 9}))["userErrors"] == []

        async def made() -> dict[str, Any] | None:
            server.clock.advance(quiet + 1)
            return next((m for m in receiver.messages if "configuration changed" in m["title"]), None)

        changed = await eventually(made, timeout=30, interval=0.1)
        assert changed["title"] == f"{HOST}: configuration changed"
        assert "(changed by settings module 'audio')" in changed["message"]
        assert "1 changed, 0 added, 0 removed: changed settings/audio" in changed["message"]


async def test_an_overdue_backup_is_told_once(make_server: Callable[..., InProcessServer], tmp_path: Path) -> None:
    with Receiver() as receiver:
        server = notifying_server(
            make_server, tmp_path, target("ops", receiver.url(), ["BACKUP_OVERDUE"]), BACKUPS_NOTIFY_OVERDUE_HOURS="2"
        )
        await create_and_wait(server, "fresh")
        server.clock.advance(3600)
        await asyncio.sleep(0.3)  # several looks of the timer (poll 0.05 s): not overdue after one hour
        assert receiver.messages == []
        server.clock.advance(3 * 3600)
        overdue = await received(receiver, "backup overdue")
        assert "No restore point succeeded in the last 2 hours: the last one was at" in overdue["message"]
        await asyncio.sleep(0.3)
        assert len(receiver.messages) == 1, "told once, not at every look"


async def test_a_target_that_never_answers_delays_no_operation(
    make_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    with SilentEndpoint() as silent:
        url = f"json://127.0.0.1:{silent.port}/hook"
        server = notifying_server(make_server, tmp_path, target("dead", url), BACKUPS_NOTIFY_TIMEOUT_SECONDS="4")
        final = await failing_create(server, tmp_path)
        took = datetime.fromisoformat(final["finishedAt"]) - datetime.fromisoformat(final["startedAt"])
        assert took < timedelta(seconds=4), "the operation did not wait for the target"

        async def timed_out() -> str | None:
            return (await targets(server))["dead"]["lastError"]

        error = await eventually(timed_out, timeout=30)
        assert error == "gave up after 1 try: timed out after 4 s (no answer)"
        assert silent.accepted >= 1


async def test_a_refusing_target_says_so_and_a_test_message_says_whether_it_arrived(
    make_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now: connections are refused
    with Receiver() as receiver, Receiver(status=500) as failing:
        server = notifying_server(
            make_server,
            tmp_path,
            target("gone", f"json://127.0.0.1:{port}/hook"),
            target("ok", receiver.url()),
            target("broken", failing.url()),
        )
        gone = (await execute(server, TEST, name="gone"))["testNotification"]
        assert gone["delivered"] is False and gone["userErrors"] == []
        assert "connection refused" in gone["error"], gone
        assert (await targets(server))["gone"]["lastError"] == gone["error"]

        ok = (await execute(server, TEST, name="ok"))["testNotification"]
        assert ok == {"delivered": True, "error": None, "userErrors": []}
        assert receiver.titles() == [f"{HOST}: test notification"]
        assert (await targets(server))["ok"]["lastSentAt"] is not None

        broken = (await execute(server, TEST, name="broken"))["testNotification"]
        assert broken["delivered"] is False and "500" in broken["error"], broken
        assert len(failing.messages) == 1, "tried once"

        missing = (await execute(server, TEST, name="nope"))["testNotification"]
        assert missing["delivered"] is False
        assert missing["userErrors"] == [
            {"code": "NOT_FOUND", "message": "no notification target named 'nope'", "field": "name"}
        ]
        # The last deliveries are stored: a restart keeps them.
        before = await targets(server)
        server.stop()
        server.start()
        assert await targets(server) == before

        viewer = server.with_token(server.create_token("watcher", "viewer"))
        assert len((await execute(viewer, TARGETS))["notificationTargets"]) == 3
        with pytest.raises(Exception, match="FORBIDDEN|operator"):
            await execute(viewer, TEST, name="ok")
        assert len(receiver.messages) == 1, "the viewer's test sent nothing"


async def test_secrets_in_target_urls_show_nowhere(
    make_server_process: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    """The server's own log (a process of its own, at debug level), the API, an operation's log
    and /metrics hold neither the password nor the header token of a target's URL."""
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    with Receiver() as receiver:
        server = notifying_server(
            make_server_process,
            tmp_path,
            target("hook", receiver.url(userinfo=f"ops:{SECRET}") + f"?+X-Token={TOKEN}"),
            target("gone", f"json://ops:{SECRET}@127.0.0.1:{port}/hook?+X-Token={TOKEN}"),
            BACKUPS_LOG_LEVEL="debug",
        )
        final = await failing_create(server, tmp_path)
        await received(receiver, "create restore point failed")
        assert receiver.headers[0]["X-Token"] == TOKEN, "the secret itself is sent to the target"

        async def gave_up() -> str | None:
            error = (await targets(server))["gone"]["lastError"]
            return error if error and error.startswith("gave up") else None

        await eventually(gave_up)
        tested = (await execute(server, TEST, name="gone"))["testNotification"]
        answers = [await targets(server), tested]
        shown = (await targets(server))["hook"]["url"]
        assert shown == f"json://ops:****@127.0.0.1:{receiver.port}/hook?+X-Token=****"
        op = await execute(server, "query($id: ID!) { operation(id: $id) { log { message } } }", id=final["id"])
        async with httpx.AsyncClient() as client:
            headers = {"Authorization": f"Bearer {server.token}"}
            metrics = (await client.get(f"{server.url}/metrics", headers=headers)).text
        assert "backups_" in metrics
        server.stop()
        log = server.log_path.read_text()
        assert "notification target 'gone'" in log and "DEBUG" in log.upper(), "the log says what it should"
        for place, text in [("API", str(answers)), ("operation log", str(op)), ("metrics", metrics), ("log", log)]:
            assert SECRET not in text and TOKEN not in text, place


async def test_fifty_failures_in_a_burst_make_a_few_messages(
    make_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    with Receiver() as receiver:
        server = notifying_server(
            make_server,
            tmp_path,
            target("ops", receiver.url(), ["OPERATION_FAILED"]),
            BACKUPS_NOTIFY_FOLD_SECONDS="8",
            BACKUPS_MAX_CONCURRENT_OPERATIONS="4",
        )
        shutil.rmtree(tmp_path / "site")
        ops = [await create_restore_point(server, f"burst {n}") for n in range(50)]
        for op in ops:
            assert (await wait_for_operation(server, op["id"]))["status"] == "FAILED"

        def told() -> int:
            return sum(
                int(m.group(1)) if (m := re.match(r"(\d+) events", msg["message"])) else 1 for msg in receiver.messages
            )

        async def all_told() -> bool:
            return told() >= 50

        await eventually(all_told, timeout=40)
        assert told() == 50
        assert len(receiver.messages) <= 4, receiver.titles()
        assert receiver.messages[0]["title"] == f"{HOST}: create restore point failed", "the first at once"
        folded = receiver.messages[-1]
        assert re.match(r"\d+ events: \d+ operation failed\. - create restore point failed: ", folded["message"])


async def test_an_email_target_reaches_a_real_smtp_server(
    make_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    mails: list[Envelope] = []

    class Inbox:
        async def handle_DATA(self, server: object, session: object, envelope: Envelope) -> str:  # noqa: N802
            mails.append(envelope)
            return "250 OK"

    smtp = Controller(Inbox(), hostname="127.0.0.1", port=free_port())
    smtp.start()
    try:
        url = f"mailto://127.0.0.1:{smtp.port}?from=backups@example.net&to=ops@example.net"
        server = notifying_server(make_server, tmp_path, target("mail", url, ["OPERATION_FAILED"]))
        assert (await execute(server, TEST, name="mail"))["testNotification"]["delivered"] is True
        final = await failing_create(server, tmp_path)

        async def two() -> bool:
            return len(mails) >= 2

        await eventually(two)
        test, failed = (message_from_bytes(mail.original_content or b"") for mail in mails)
        assert mails[1].rcpt_tos == ["ops@example.net"] and failed["From"] == "backups@example.net"
        assert test["Subject"] == f"{HOST}: test notification"
        assert failed["Subject"] == f"{HOST}: create restore point failed"
        assert final["id"] in str(failed.get_payload(0))
    finally:
        smtp.stop()


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            target("ops", "json://127.0.0.1/hook", ["OPERATION_FAILED", "SERVER_ON_FIRE"]),
            "unknown event 'SERVER_ON_FIRE'",
        ),
        (target("ops", f"nosuch://user:{SECRET}@host/"), "url is not an Apprise URL that can be used (nosuch://...)"),
        (target("ops", "json://a/") + target("ops", "json://b/"), "the name is used twice"),
    ],
)
def test_a_bad_target_stops_the_server_with_one_line(tmp_path: Path, entry: str, message: str) -> None:
    config = tmp_path / "backups.toml"
    config.write_text('[[sources]]\nname = "settings"\nkind = "settings"\n' + entry)
    env = {"BACKUPS_DATA_DIR": str(tmp_path / "data"), "BACKUPS_PORT": "9", "BACKUPS_CONFIG": str(config)}
    result = subprocess.run(
        [sys.executable, "-m", "server", "serve"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith(f"backups: config file {config}: notification 'ops': ")
    assert message in result.stderr and result.stderr.count("\n") == 1 and SECRET not in result.stderr
    assert not (tmp_path / "data").exists()


async def test_damage_a_verification_cannot_repair_is_told(
    make_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    """A blob file removed from the store (no copy to repair it from): verifyBackups finds the
    restore point MISSING, and VERIFICATION_FAILED names it."""
    with Receiver() as receiver:
        server = notifying_server(make_server, tmp_path, target("verify", receiver.url(), ["VERIFICATION_FAILED"]))
        (tmp_path / "site" / "big.bin").write_bytes(os.urandom(3 * 1024 * 1024))  # over 1 MiB: a loose blob
        point = (await create_and_wait(server, "nightly before the disk died"))["restorePoint"]
        digest = hashlib.sha256((tmp_path / "site" / "big.bin").read_bytes()).hexdigest()
        (server.data_dir / "blobs" / digest[:2] / digest[2:]).unlink()
        started = (await execute(server, VERIFY, ids=[point["id"]]))["verifyBackups"]
        assert (await wait_for_operation(server, started["operation"]["id"]))["status"] == "SUCCEEDED"

        told = await received(receiver, "verification failed")
        assert told["title"] == f"{HOST}: verification failed" and told["type"] == "failure"
        assert "nightly before the disk died: MISSING" in told["message"]


VERIFY = """mutation($ids: [ID!]) { verifyBackups(restorePointIds: $ids) { operation { id } userErrors { code } } }"""
