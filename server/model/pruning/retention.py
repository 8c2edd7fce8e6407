"""Which of a schedule's restore points its retention policy keeps, and every reason why.

restic's rules (keep-last, -hourly, -daily, -weekly, -monthly, -yearly, -within), with the
calendar periods taken in the schedule's own time zone. Pinned restore points are kept and
do not count toward any rule; the schedule's newest restore point is always kept. Only the
schedule's own restore points (origin SCHEDULED) are ever looked at: manual, imported and
safety ones are out of reach. One pure function, so the preview and the prune cannot differ.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from server.model.records import RestorePoint, RetentionPolicy

NO_RULE = "no retention rule is set: every restore point is kept"
KEPT_BY_NONE = "kept by no retention rule"
PINNED = "pinned"
NEWEST = "the newest restore point of the schedule"

# (rule name, the policy field, the calendar period of a local time, how a period is written)
_Period = Callable[[datetime], tuple[int, ...]]
_PERIODS: tuple[tuple[str, str, _Period, Callable[[datetime], str]], ...] = (
    ("keepHourly", "keep_hourly", lambda t: (t.year, t.month, t.day, t.hour), lambda t: f"{t:%Y-%m-%d %H}:00"),
    ("keepDaily", "keep_daily", lambda t: (t.year, t.month, t.day), lambda t: f"{t:%Y-%m-%d}"),
    ("keepWeekly", "keep_weekly", lambda t: tuple(t.isocalendar())[:2], lambda t: f"week {t:%G-W%V}"),
    ("keepMonthly", "keep_monthly", lambda t: (t.year, t.month), lambda t: f"{t:%Y-%m}"),
    ("keepYearly", "keep_yearly", lambda t: (t.year,), lambda t: f"{t:%Y}"),
)


@dataclass(frozen=True, slots=True)
class RetentionDecision:
    point: RestorePoint
    keep: bool
    reasons: tuple[str, ...]


def decide(
    points: Sequence[RestorePoint], policy: RetentionPolicy, time_zone: str, now: datetime
) -> list[RetentionDecision]:
    """A decision for each of these restore points (one schedule's), newest first."""
    ordered = sorted(points, key=lambda p: (p.created_at, p.id), reverse=True)
    reasons: dict[str, list[str]] = {p.id: [] for p in ordered}
    if ordered:
        reasons[ordered[0].id].append(NEWEST)
    counted = [p for p in ordered if not p.pinned]
    for point in ordered:
        if point.pinned:
            reasons[point.id].append(PINNED)
    if not policy.limited:
        for point in ordered:
            reasons[point.id].append(NO_RULE)
    if policy.keep_last is not None:
        for number, point in enumerate(counted[: policy.keep_last], start=1):
            reasons[point.id].append(f"keepLast: {number} of the newest {policy.keep_last}")
    zone = ZoneInfo(time_zone)
    for rule, name, period_of, written in _PERIODS:
        limit = getattr(policy, name)
        if limit is None:
            continue
        seen: set[tuple[int, ...]] = set()
        for point in counted:  # newest first: the first of each period is its newest
            local = point.created_at.astimezone(zone)
            period = period_of(local)
            if period in seen:
                continue
            if len(seen) == limit:
                break
            seen.add(period)
            reasons[point.id].append(f"{rule}: the newest of {written(local)} ({len(seen)} of {limit})")
    if policy.keep_within_days is not None:
        since = now - timedelta(days=policy.keep_within_days)
        for point in counted:
            if point.created_at >= since:
                reasons[point.id].append(f"keepWithinDays: made within the last {policy.keep_within_days} days")
    decisions = []
    for point in ordered:
        kept = bool(reasons[point.id])
        decisions.append(RetentionDecision(point, kept, tuple(reasons[point.id]) if kept else (KEPT_BY_NONE,)))
    return decisions
