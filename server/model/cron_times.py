"""When a cron expression fires: 5 fields, evaluated on the wall clock of an IANA time zone.

cronsim does the parsing and the calendar (no hand-written cron parsing here). On the wall
clock, a daily 02:30 stays 02:30 across DST: a time the spring change skips runs at the first
time that exists after it (03:00), and a time the autumn change repeats runs once (as Debian's
cron does); interval expressions such as */30 fire in both repeated hours.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from cronsim import CronSim, CronSimError

from server.model.errors import InvalidInput, quoted

# Files in the zone database that are no IANA zone: `localtime` is the host's own setting (a
# schedule in it would follow whatever the host is set to, silently), `posixrules` a template.
_NOT_ZONES = frozenset({"localtime", "posixrules"})


@functools.cache
def iana_zone_names() -> frozenset[str]:
    """Every IANA time zone name the zone database here knows ("Europe/Berlin", "UTC", ...)."""
    return frozenset(
        name
        for name in available_timezones() | {"UTC"}
        if name not in _NOT_ZONES and not name.startswith(("posix/", "right/"))
    )


def check_zone(name: str, field: str = "timeZone") -> str:
    """The name if it is an IANA time zone that loads here; else INVALID_INPUT (what a client gives)."""
    if name not in iana_zone_names():
        raise InvalidInput(
            f"unknown time zone {quoted(name)}: give an IANA name such as 'Europe/Berlin' or 'UTC'", field=field
        )
    zone(name, field)
    return name


def zone(name: str, field: str = "timeZone") -> ZoneInfo:
    """The time zone of this name (one stored before check_zone was as strict loads too);
    INVALID_INPUT if there is none."""
    if not name or len(name) > 64 or any(ch < " " for ch in name):
        raise InvalidInput(f"unknown time zone {quoted(name)}: give an IANA name such as 'Europe/Berlin'", field=field)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidInput(
            f"unknown time zone {quoted(name)}: give an IANA name such as 'Europe/Berlin'", field=field
        ) from None


def check_cron(expression: str, field: str = "cron") -> str:
    """The expression, normalised to single spaces, if it is a valid 5-field cron; else INVALID_INPUT."""
    fields = expression.split()
    if len(fields) != 5 or any(ch < " " and ch not in " \t" for ch in expression):
        raise InvalidInput(
            f"bad cron expression {quoted(expression)}: give 5 fields (minute hour day-of-month month day-of-week)",
            field=field,
        )
    normal = " ".join(fields)
    try:
        CronSim(normal, datetime(2000, 1, 1, tzinfo=UTC))
    except CronSimError as error:
        raise InvalidInput(f"bad cron expression {quoted(expression)}: {error}", field=field) from None
    return normal


def next_fire(expression: str, time_zone: str, after: datetime) -> datetime | None:
    """The first time strictly after `after` that the expression fires, in UTC (None if never,
    e.g. 30 February)."""
    local = after.astimezone(ZoneInfo(time_zone))
    try:
        return next(iter(CronSim(expression, local))).astimezone(UTC)
    except StopIteration:
        return None
