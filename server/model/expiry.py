"""When a restore point may be set to expire: a pure check, the same for create and update."""

from __future__ import annotations

from datetime import datetime, timedelta

from server.model.errors import InvalidInput

# "Ten years ahead", counted in days so that a 29 February needs no special case.
MAX_AHEAD = timedelta(days=3653)


def check_expiry(expires_at: datetime, now: datetime, field: str = "expiresAt") -> datetime:
    """The expiry if it is later than `now` and at most ten years ahead; else INVALID_INPUT."""
    if expires_at.utcoffset() is None:
        raise InvalidInput(f"{field} needs a UTC offset, e.g. 2026-03-01T12:00:00Z", field=field)
    if expires_at <= now:
        raise InvalidInput(f"{field} is in the past ({expires_at.isoformat()}); give a later time", field=field)
    if expires_at > now + MAX_AHEAD:
        raise InvalidInput(f"{field} is more than ten years ahead; leave it out to keep the restore point", field=field)
    return expires_at
