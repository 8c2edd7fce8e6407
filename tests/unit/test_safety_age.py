"""The safety restore points' age limit: older ones go, never a pinned one nor the newest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from server.model.pruning.safety_age import expired_safety
from server.model.records import RestorePoint, RestorePointOrigin

NOW = datetime(2026, 6, 15, 12, tzinfo=UTC)


def point(
    name: str, days_old: float, origin: RestorePointOrigin = RestorePointOrigin.SAFETY, **extra: object
) -> RestorePoint:
    return RestorePoint(
        id=name,
        label=name,
        note=None,
        origin=origin,
        created_at=NOW - timedelta(days=days_old),
        created_by=None,
        size_bytes=0,
        stored_bytes=0,
        item_count=0,
        checksum="",
        server_version="test",
        **extra,  # type: ignore[arg-type]
    )


def test_only_unpinned_safety_ones_past_the_limit_and_never_the_newest() -> None:
    points = [
        point("newest-but-old", 40),
        point("old", 50),
        point("old-pinned", 60, pinned=True),
        point("young", 29.9),
        point("manual-old", 90, RestorePointOrigin.MANUAL),
        point("scheduled-old", 90, RestorePointOrigin.SCHEDULED),
    ]
    # "young" is the newest safety one here; the three old ones: one pinned, two to go.
    assert [d.point.id for d in expired_safety(points, 30, NOW)] == ["newest-but-old", "old"]
    assert [d.point.id for d in expired_safety(points[:3], 30, NOW)] == ["old"]
    assert expired_safety(points, 100, NOW) == []
    assert all("older than 30 days" in d.reasons[0] for d in expired_safety(points, 30, NOW))
