"""The retention decision: restic's rules on a schedule's restore points, in its time zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from server.model.pruning.retention import KEPT_BY_NONE, NEWEST, NO_RULE, PINNED, decide
from server.model.records import RestorePoint, RestorePointOrigin, RetentionPolicy

NOW = datetime(2026, 6, 15, 12, tzinfo=UTC)


def point(number: int, at: datetime, *, pinned: bool = False) -> RestorePoint:
    return RestorePoint(
        id=f"rp_{number:024x}",
        label=f"p{number}",
        note=None,
        origin=RestorePointOrigin.SCHEDULED,
        created_at=at,
        created_by="schedule:s",
        size_bytes=0,
        stored_bytes=0,
        item_count=0,
        checksum="0" * 64,
        server_version="t",
        pinned=pinned,
        schedule_id="sch_x",
    )


def kept(points: list[RestorePoint], policy: RetentionPolicy, zone: str = "UTC") -> list[str]:
    return [d.point.label for d in decide(points, policy, zone, NOW) if d.keep]


def test_no_rule_keeps_everything() -> None:
    points = [point(n, NOW - timedelta(days=n)) for n in range(5)]
    decisions = decide(points, RetentionPolicy(), "UTC", NOW)
    assert all(d.keep and NO_RULE in d.reasons for d in decisions)


def test_keep_last_keeps_the_newest_and_says_why_for_each() -> None:
    points = [point(n, NOW - timedelta(hours=n)) for n in range(5)]
    decisions = decide(points, RetentionPolicy(keep_last=2), "UTC", NOW)
    assert [(d.point.label, d.keep) for d in decisions] == [
        ("p0", True),
        ("p1", True),
        ("p2", False),
        ("p3", False),
        ("p4", False),
    ]
    assert decisions[0].reasons == (NEWEST, "keepLast: 1 of the newest 2")
    assert decisions[1].reasons == ("keepLast: 2 of the newest 2",)
    assert decisions[4].reasons == (KEPT_BY_NONE,)


def test_pinned_ones_are_kept_and_do_not_count() -> None:
    points = [
        point(0, NOW),
        point(1, NOW - timedelta(hours=1), pinned=True),
        point(2, NOW - timedelta(hours=2)),
        point(3, NOW - timedelta(hours=3)),
    ]
    decisions = {d.point.label: d for d in decide(points, RetentionPolicy(keep_last=2), "UTC", NOW)}
    assert decisions["p1"].keep and decisions["p1"].reasons == (PINNED,)
    assert decisions["p2"].keep, "the pinned one must not use up a keepLast place"
    assert not decisions["p3"].keep


def test_the_newest_is_kept_even_when_no_rule_would_keep_it() -> None:
    points = [point(0, NOW - timedelta(days=40)), point(1, NOW - timedelta(days=50))]
    decisions = decide(points, RetentionPolicy(keep_within_days=7), "UTC", NOW)
    assert [(d.point.label, d.keep, d.reasons) for d in decisions] == [
        ("p0", True, (NEWEST,)),
        ("p1", False, (KEPT_BY_NONE,)),
    ]


def test_daily_keeps_the_newest_of_each_day_in_the_schedules_zone() -> None:
    # 23:30 UTC on 14 June is 01:30 on 15 June in Berlin: the same day as the noon one there.
    points = [
        point(0, NOW),
        point(1, datetime(2026, 6, 14, 23, 30, tzinfo=UTC)),
        point(2, datetime(2026, 6, 14, 8, tzinfo=UTC)),
        point(3, datetime(2026, 6, 13, 8, tzinfo=UTC)),
    ]
    assert kept(points, RetentionPolicy(keep_daily=2), "UTC") == ["p0", "p1"]
    assert kept(points, RetentionPolicy(keep_daily=2), "Europe/Berlin") == ["p0", "p2"]


def test_weekly_monthly_yearly_and_within() -> None:
    points = [point(n, NOW - timedelta(days=10 * n)) for n in range(40)]  # 390 days back
    assert kept(points, RetentionPolicy(keep_monthly=3)) == ["p0", "p2", "p5"]
    assert kept(points, RetentionPolicy(keep_yearly=5)) == ["p0", "p17"]
    assert kept(points, RetentionPolicy(keep_weekly=2)) == ["p0", "p1"]
    assert kept(points, RetentionPolicy(keep_within_days=25)) == ["p0", "p1", "p2"]
    both = decide(points, RetentionPolicy(keep_last=1, keep_monthly=1), "UTC", NOW)[0]
    assert both.reasons == (NEWEST, "keepLast: 1 of the newest 1", "keepMonthly: the newest of 2026-06 (1 of 1)")
