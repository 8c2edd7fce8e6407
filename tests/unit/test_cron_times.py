"""Cron times on the wall clock of a time zone: DST never shifts a daily run by an hour."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from server.model.cron_times import check_cron, check_zone, next_fire, zone
from server.model.errors import InvalidInput


def runs(expression: str, time_zone: str, start: datetime, count: int) -> list[datetime]:
    found, after = [], start
    for _ in range(count):
        after = next_fire(expression, time_zone, after)
        assert after is not None
        found.append(after)
    return found


def local(moments: list[datetime], time_zone: str) -> list[str]:
    return [m.astimezone(zone(time_zone)).strftime("%Y-%m-%d %H:%M %Z") for m in moments]


def test_a_daily_run_keeps_its_wall_clock_time_across_both_dst_changes() -> None:
    # Europe/Berlin: 29 March 2026 02:00 -> 03:00, 25 October 2026 03:00 -> 02:00.
    spring = runs("0 6 * * *", "Europe/Berlin", datetime(2026, 3, 27, 12, tzinfo=UTC), 4)
    assert local(spring, "Europe/Berlin") == [
        "2026-03-28 06:00 CET",
        "2026-03-29 06:00 CEST",
        "2026-03-30 06:00 CEST",
        "2026-03-31 06:00 CEST",
    ]
    assert spring[1] - spring[0] == timedelta(hours=23)  # the short day
    autumn = runs("0 6 * * *", "Europe/Berlin", datetime(2026, 10, 24, 12, tzinfo=UTC), 2)
    assert local(autumn, "Europe/Berlin") == ["2026-10-25 06:00 CET", "2026-10-26 06:00 CET"]
    assert autumn[0].astimezone(UTC).hour == 5


def test_a_time_the_spring_change_skips_runs_at_the_first_time_after_it() -> None:
    found = runs("30 2 * * *", "Europe/Berlin", datetime(2026, 3, 28, 12, tzinfo=UTC), 2)
    assert local(found, "Europe/Berlin") == ["2026-03-29 03:00 CEST", "2026-03-30 02:30 CEST"]


def test_a_time_the_autumn_change_repeats_runs_once() -> None:
    found = runs("30 2 * * *", "Europe/Berlin", datetime(2026, 10, 24, 12, tzinfo=UTC), 2)
    assert local(found, "Europe/Berlin") == ["2026-10-25 02:30 CEST", "2026-10-26 02:30 CET"]


def test_us_zones_and_utc() -> None:
    # America/New_York: 8 March 2026 02:00 -> 03:00.
    found = runs("0 9 * * 1-5", "America/New_York", datetime(2026, 3, 5, 20, tzinfo=UTC), 3)
    assert local(found, "America/New_York") == ["2026-03-06 09:00 EST", "2026-03-09 09:00 EDT", "2026-03-10 09:00 EDT"]
    assert next_fire("*/15 * * * *", "UTC", datetime(2026, 1, 1, 0, 14, 59, tzinfo=UTC)) == datetime(
        2026, 1, 1, 0, 15, tzinfo=UTC
    )
    # Strictly after: a moment that is itself a cron time gives the next one.
    assert next_fire("0 0 * * *", "UTC", datetime(2026, 1, 1, tzinfo=UTC)) == datetime(2026, 1, 2, tzinfo=UTC)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "* * * *",
        "* * * * * *",
        "60 * * * *",
        "* 24 * * *",
        "@hourly",
        "0 0 31 2 *",
        "a b c d e",
        "* * * * *\n* * * * *",
    ],
)
def test_bad_cron_expressions_are_refused(bad: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        check_cron(bad)
    assert refused.value.field == "cron"


@pytest.mark.parametrize("bad", ["", "Nowhere/City", "../../etc/localtime", "/etc/localtime", "UTC\x00", "x" * 100])
def test_unknown_time_zones_are_refused(bad: str) -> None:
    with pytest.raises(InvalidInput):
        zone(bad)


@pytest.mark.parametrize(
    "not_iana", ["localtime", "posixrules", "posix/Europe/Berlin", "right/UTC", "Europe/" + "x" * 9000]
)
def test_what_a_client_gives_must_be_an_iana_name(not_iana: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        check_zone(not_iana)
    assert refused.value.field == "timeZone" and len(refused.value.message) < 200


@pytest.mark.parametrize("name", ["UTC", "Europe/Berlin", "America/Argentina/Buenos_Aires", "Etc/GMT+5"])
def test_iana_names_are_accepted(name: str) -> None:
    assert check_zone(name) == name


def test_cron_is_normalised() -> None:
    assert check_cron("  0   3 * *   1-5 ") == "0 3 * * 1-5"
