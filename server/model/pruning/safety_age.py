"""Which safety restore points (made before each apply) have outlived their age limit.

Their own limit (BACKUPS_SAFETY_MAX_AGE_DAYS), apart from any schedule's retention: a pinned
one is never deleted, nor the newest safety restore point, whatever its age (it is the way
back from the latest apply). One pure function, so what the prune deletes is easy to test.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from server.model.pruning.retention import RetentionDecision
from server.model.records import RestorePoint, RestorePointOrigin


def expired_safety(points: Sequence[RestorePoint], max_age_days: int, now: datetime) -> list[RetentionDecision]:
    """The safety restore points among `points` older than `max_age_days`, to delete, with why."""
    safety = sorted(
        (p for p in points if p.origin is RestorePointOrigin.SAFETY), key=lambda p: (p.created_at, p.id), reverse=True
    )
    cutoff = now - timedelta(days=max_age_days)
    reason = f"a safety restore point older than {max_age_days} days (BACKUPS_SAFETY_MAX_AGE_DAYS)"
    return [RetentionDecision(p, False, (reason,)) for p in safety[1:] if not p.pinned and p.created_at < cutoff]
