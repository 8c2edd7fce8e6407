"""ScheduleInput as a form uses it, through the real server: updateSchedule changes only what
it is given (no `name` needed), null is told apart from left out where a schedule can be null,
every problem comes back at once with its field, and nothing a client sent is echoed whole."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.support.api import execute
from tests.support.in_process import InProcessServer
from tests.support.schedules import CREATE, LIST, UPDATE, create_schedule, read_schedule

FAST = {"BACKUPS_SCHEDULER_POLL_SECONDS": "0.05"}
LONG = 10_000


def started(make_server: Callable[..., InProcessServer]) -> InProcessServer:
    return make_server(**FAST).start()


async def update(server: InProcessServer, schedule_id: str, **given: Any) -> dict[str, Any]:
    return (await execute(server, UPDATE, id=schedule_id, input=given))["updateSchedule"]


async def create(server: InProcessServer, **given: Any) -> dict[str, Any]:
    return (await execute(server, CREATE, input=given))["createSchedule"]


def problems(payload: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(e["code"], e["field"]) for e in payload["userErrors"]]


async def test_update_schedule_keeps_every_field_left_out_name_included(
    make_server: Callable[..., InProcessServer],
) -> None:
    server = started(make_server)
    made = await create_schedule(
        server,
        name="nightly",
        cron="30 2 * * *",
        timeZone="Europe/Berlin",
        retention={"keepDaily": 7},
        labelTemplate="{schedule} {date}",
        jitterSeconds=60,
        afterChangeQuietSeconds=600,
    )
    changed = await update(server, made["id"], cron="0 4 * * *")
    assert changed["userErrors"] == []
    after = changed["schedule"]
    assert after["cron"] == "0 4 * * *"
    for kept in (
        "name",
        "timeZone",
        "retention",
        "labelTemplate",
        "jitterSeconds",
        "afterChangeQuietSeconds",
        "enabled",
    ):
        assert after[kept] == made[kept], kept
    paused = await update(server, made["id"], enabled=False)
    assert paused["userErrors"] == [] and paused["schedule"]["name"] == "nightly"
    assert paused["schedule"]["enabled"] is False and paused["schedule"]["cron"] == "0 4 * * *"
    # null where a schedule cannot be null is as if left out: the name, zone and retention stay.
    same = await update(server, made["id"], name=None, timeZone=None, retention=None, enabled=None)
    assert same["userErrors"] == []
    assert {k: same["schedule"][k] for k in ("name", "timeZone", "retention", "enabled")} == {
        "name": "nightly",
        "timeZone": "Europe/Berlin",
        "retention": made["retention"],
        "enabled": False,
    }


async def test_null_clears_what_a_schedule_can_show_as_null(make_server: Callable[..., InProcessServer]) -> None:
    server = started(make_server)
    made = await create_schedule(
        server, name="both", cron="0 3 * * *", afterChangeQuietSeconds=600, labelTemplate="{schedule} {date}"
    )
    after_changes_only = await update(server, made["id"], cron=None)
    assert after_changes_only["userErrors"] == []
    schedule = after_changes_only["schedule"]
    assert schedule["cron"] is None and schedule["nextRunAt"] is None and schedule["afterChangeQuietSeconds"] == 600
    assert schedule["labelTemplate"] == "{schedule} {date}"

    default_label = await update(server, made["id"], labelTemplate=None)
    assert default_label["userErrors"] == [] and default_label["schedule"]["labelTemplate"] is None

    # Neither a cron nor after changes: refused, on the field that is missing, and nothing changes.
    neither = await update(server, made["id"], afterChangeQuietSeconds=None)
    assert problems(neither) == [("INVALID_INPUT", "cron")] and neither["schedule"] is None
    cron_again = await update(server, made["id"], cron="0 5 * * *", afterChangeQuietSeconds=None)
    assert cron_again["userErrors"] == []
    assert cron_again["schedule"]["cron"] == "0 5 * * *" and cron_again["schedule"]["afterChangeQuietSeconds"] is None


async def test_create_schedule_needs_a_name(make_server: Callable[..., InProcessServer]) -> None:
    server = started(make_server)
    for given in ({"cron": "0 3 * * *"}, {"name": None, "cron": "0 3 * * *"}):
        payload = await create(server, **given)
        assert payload["schedule"] is None
        assert problems(payload) == [("INVALID_INPUT", "name")], given
        assert "needs a name" in payload["userErrors"][0]["message"]
    assert (await execute(server, LIST))["schedules"] == []


async def test_every_problem_comes_back_at_once_each_with_its_field(
    make_server: Callable[..., InProcessServer],
) -> None:
    server = started(make_server)
    kept = await create_schedule(server, name="kept", cron="0 3 * * *", retention={"keepLast": 3})
    await create_schedule(server, name="other", cron="0 4 * * *")
    before = (await execute(server, LIST))["schedules"]
    wrong = {"cron": "61 * * * *", "timeZone": "Mars/Olympus_Mons", "retention": {"keepLast": 0, "keepDaily": -1}}
    expected = [
        ("INVALID_INPUT", "cron"),
        ("INVALID_INPUT", "timeZone"),
        ("INVALID_INPUT", "retention.keepLast"),
        ("INVALID_INPUT", "retention.keepDaily"),
    ]
    created = await create(server, name="fresh", **wrong)
    assert created["schedule"] is None and sorted(problems(created)) == sorted(expected)
    updated = await update(server, kept["id"], **wrong)
    assert updated["schedule"] is None and sorted(problems(updated)) == sorted(expected)
    # A taken name and a bad jitter too: five problems, five userErrors.
    both = await update(server, kept["id"], name="other", jitterSeconds=-1, **wrong)
    assert sorted(problems(both)) == sorted([*expected, ("INVALID_INPUT", "name"), ("INVALID_INPUT", "jitterSeconds")])
    messages = {e["field"]: e["message"] for e in both["userErrors"]}
    assert "exists already" in messages["name"] and "Mars/Olympus_Mons" in messages["timeZone"]
    assert (await execute(server, LIST))["schedules"] == before


async def test_nothing_a_client_sent_is_echoed_whole(make_server: Callable[..., InProcessServer]) -> None:
    server = started(make_server)
    kept = await create_schedule(server, name="kept", cron="0 3 * * *")
    huge = "n" * LONG
    for field, given in [
        ("name", {"name": huge, "cron": "0 3 * * *"}),
        ("cron", {"name": "fresh", "cron": "1 " * (LONG // 2)}),
        ("cron", {"name": "fresh", "cron": huge}),
        ("timeZone", {"name": "fresh", "cron": "0 3 * * *", "timeZone": "Europe/" + huge}),
    ]:
        for payload in (await create(server, **given), await update(server, kept["id"], **given)):
            [error] = payload["userErrors"]
            assert (error["code"], error["field"]) == ("INVALID_INPUT", field)
            assert len(error["message"]) < 400, error["message"][:100]
            assert "characters)" in error["message"], error["message"]
    # Ids too: a made-up id of any length is named by its start.
    missing = await update(server, "sch_" + huge, cron="0 4 * * *")
    assert problems(missing) == [("NOT_FOUND", "id")] and len(missing["userErrors"][0]["message"]) < 400


async def test_time_zones_are_iana_names_only(make_server: Callable[..., InProcessServer]) -> None:
    server = started(make_server)
    kept = await create_schedule(server, name="kept", cron="0 3 * * *", timeZone="Europe/Berlin")
    # Files in the zone database that name no zone: the host's own setting and a template.
    for not_a_zone in ("localtime", "posixrules", "posix/Europe/Berlin", "right/UTC"):
        created = await create(server, name="fresh", cron="0 3 * * *", timeZone=not_a_zone)
        assert problems(created) == [("INVALID_INPUT", "timeZone")], not_a_zone
        updated = await update(server, kept["id"], timeZone=not_a_zone)
        assert problems(updated) == [("INVALID_INPUT", "timeZone")], not_a_zone
    unchanged = await read_schedule(server, kept["id"])
    assert unchanged is not None and unchanged["timeZone"] == "Europe/Berlin"
    for zone in ("UTC", "America/Argentina/Buenos_Aires", "Asia/Kolkata"):
        made = await create_schedule(server, name=f"in {zone.replace('/', ' ')}", cron="0 3 * * *", timeZone=zone)
        assert made["timeZone"] == zone
    left_out = await create_schedule(server, name="default", cron="0 3 * * *")
    assert left_out["timeZone"] == "UTC"
