"""Helpers for the schedule tests: make and read schedules, list what they started."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from tests.support.api import OPERATION_FIELDS, Target, execute

T = TypeVar("T")

SCHEDULE_FIELDS = f"""id name enabled cron timeZone afterChangeQuietSeconds jitterSeconds labelTemplate nextRunAt
    lastRunAt lastSuccessAt
    retention {{ keepLast keepHourly keepDaily keepWeekly keepMonthly keepYearly keepWithinDays }}
    lastOperation {{ {OPERATION_FIELDS} }}"""
CREATE = f"""mutation($input: ScheduleInput!) {{ createSchedule(input: $input) {{
    schedule {{ {SCHEDULE_FIELDS} }} userErrors {{ code message field }} }} }}"""
UPDATE = f"""mutation($id: ID!, $input: ScheduleInput!) {{ updateSchedule(id: $id, input: $input) {{
    schedule {{ {SCHEDULE_FIELDS} }} userErrors {{ code message field }} }} }}"""
READ = f"query($id: ID!) {{ schedule(id: $id) {{ {SCHEDULE_FIELDS} }} }}"
LIST = f"{{ schedules {{ {SCHEDULE_FIELDS} }} }}"
RUN = f"""mutation($id: ID!) {{ runSchedule(id: $id) {{ operation {{ {OPERATION_FIELDS} }}
    userErrors {{ code message field }} }} }}"""
PRUNE = f"""mutation($id: ID!) {{ pruneSchedule(id: $id) {{ operation {{ {OPERATION_FIELDS} }}
    userErrors {{ code message field }} }} }}"""
DELETE = "mutation($id: ID!) { deleteSchedule(id: $id) { deletedId userErrors { code message field } } }"
PREVIEW = """query($id: ID!) { retentionPreview(scheduleId: $id) { keep reasons
    restorePoint { id label origin pinned createdAt } } }"""
OPERATIONS = f"""query($by: String) {{ operations(first: 100, requestedBy: $by, includeDismissed: true) {{
    nodes {{ {OPERATION_FIELDS} log {{ sequence level message }} }} }} }}"""


async def create_schedule(server: Target, **given: Any) -> dict[str, Any]:
    """createSchedule with these ScheduleInput fields (camelCase); asserts it worked."""
    payload = (await execute(server, CREATE, input=given))["createSchedule"]
    assert payload["userErrors"] == [], payload
    return payload["schedule"]


async def read_schedule(server: Target, schedule_id: str) -> dict[str, Any] | None:
    return (await execute(server, READ, id=schedule_id))["schedule"]


async def operations_by(server: Target, schedule_name: str) -> list[dict[str, Any]]:
    """The operations a schedule started, newest first."""
    return (await execute(server, OPERATIONS, by=f"schedule:{schedule_name}"))["operations"]["nodes"]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def eventually(check: Callable[[], Awaitable[T | None]], timeout: float = 20, interval: float = 0.05) -> T:
    """Call `check` until it returns something true; returns that."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not true within {timeout} s")
        await asyncio.sleep(interval)


async def settled(server: Target, schedule_name: str, count: int, timeout: float = 30) -> list[dict[str, Any]]:
    """Wait until the schedule has started `count` operations and all of them are done."""

    async def check() -> list[dict[str, Any]] | None:
        ops = await operations_by(server, schedule_name)
        return ops if len(ops) >= count and all(op["done"] for op in ops) else None

    return await eventually(check, timeout)


def far_off_cron() -> str:
    """A daily cron twelve hours from now (UTC): a test that runs a schedule by hand, or moves
    the test clock a little, never meets its time as well (a fixed "0 3 * * *" did, near 03:00)."""
    return f"0 {(datetime.now(UTC).hour + 12) % 24} * * *"
