#!/usr/bin/env python3
"""Make (or update) a nightly schedule with a retention policy, print its retention preview,
then watch backup health.

    export BACKUPS_TOKEN=bk_...        # an admin token
    .venv/bin/python client_examples/schedule.py --name nightly --cron "30 2 * * *" \\
        --time-zone Europe/Berlin --keep-daily 7 --keep-weekly 4 --watch 60

Exits 0 when the schedule was saved, 1 when it was refused (the reason is printed).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys

from gql import Client, GraphQLRequest
from gql.transport.aiohttp import AIOHTTPTransport
from gql.transport.exceptions import TransportConnectionFailed, TransportQueryError
from gql.transport.websockets import WebsocketsTransport

DEFAULT_URL = "http://127.0.0.1:8000/graphql"
FIELDS = "id name cron timeZone nextRunAt lastSuccessAt retention { keepLast keepDaily keepWeekly keepMonthly }"
SCHEDULES = f"{{ schedules {{ {FIELDS} }} }}"
CREATE = f"""mutation($input: ScheduleInput!) {{ createSchedule(input: $input) {{
    schedule {{ {FIELDS} }} userErrors {{ code message field }} }} }}"""
UPDATE = f"""mutation($id: ID!, $input: ScheduleInput!) {{ updateSchedule(id: $id, input: $input) {{
    schedule {{ {FIELDS} }} userErrors {{ code message field }} }} }}"""
PREVIEW = """query($id: ID!) { retentionPreview(scheduleId: $id) {
    keep reasons restorePoint { id label createdAt pinned } } }"""
HEALTH = "subscription { backupHealthChanged { status problems lastSuccessAt nextRunAt } }"


async def save(session, args: argparse.Namespace) -> dict | None:  # noqa: ANN001 - a gql session
    """Create the schedule, or update the one of that name; None (errors printed) if refused."""
    retention = {
        "keepLast": args.keep_last,
        "keepDaily": args.keep_daily,
        "keepWeekly": args.keep_weekly,
        "keepMonthly": args.keep_monthly,
    }
    given = {"name": args.name, "cron": args.cron, "timeZone": args.time_zone, "retention": retention}
    existing = [s for s in (await session.execute(GraphQLRequest(SCHEDULES)))["schedules"] if s["name"] == args.name]
    if existing:
        result = await session.execute(
            GraphQLRequest(UPDATE, variable_values={"id": existing[0]["id"], "input": given})
        )
        payload = result["updateSchedule"]
    else:
        payload = (await session.execute(GraphQLRequest(CREATE, variable_values={"input": given})))["createSchedule"]
    for error in payload["userErrors"]:
        print(f"error {error['code']} ({error['field']}): {error['message']}", file=sys.stderr)
    return payload["schedule"]


async def watch(ws_url: str, token: str | None, seconds: float, events: int | None = None) -> None:
    """Print each backup health change for `seconds`, or until `events` of them were printed."""
    transport = WebsocketsTransport(
        url=ws_url,
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
        init_payload={"authorization": f"Bearer {token}"} if token else {},
    )

    async def follow() -> None:
        seen = 0
        async with Client(transport=transport) as session:
            async for event in session.subscribe(GraphQLRequest(HEALTH)):
                health = event["backupHealthChanged"]
                print(
                    f"health {health['status']}: last success {health['lastSuccessAt'] or 'never'}, "
                    f"next run {health['nextRunAt'] or 'none'}",
                    flush=True,
                )
                for problem in health["problems"]:
                    print(f"  problem: {problem}", flush=True)
                seen += 1
                if events is not None and seen >= events:
                    return

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(follow(), seconds)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=DEFAULT_URL, help="the server's GraphQL URL")
    parser.add_argument(
        "--token",
        default=os.environ.get("BACKUPS_TOKEN"),
        help="API token (default: the BACKUPS_TOKEN environment variable)",
    )
    parser.add_argument("--name", default="nightly")
    parser.add_argument("--cron", default="30 2 * * *", help="5 fields: minute hour day-of-month month day-of-week")
    parser.add_argument("--time-zone", default="UTC", help="IANA name, e.g. Europe/Berlin")
    for rule in ("last", "daily", "weekly", "monthly"):
        parser.add_argument(f"--keep-{rule}", type=int, default=None, help=f"keep{rule.title()} (default: no limit)")
    parser.add_argument("--watch", type=float, default=0, help="seconds to watch backup health (default: 0)")
    parser.add_argument(
        "--events", type=int, default=None, help="stop watching after this many health events (default: no limit)"
    )
    args = parser.parse_args()
    if args.keep_daily is None and args.keep_last is None and args.keep_weekly is None and args.keep_monthly is None:
        args.keep_daily, args.keep_weekly = 7, 4

    headers = {"Authorization": f"Bearer {args.token}"} if args.token else None
    async with Client(transport=AIOHTTPTransport(url=args.url, headers=headers)) as session:
        schedule = await save(session, args)
        if schedule is None:
            return 1
        rules = ", ".join(f"{k}={v}" for k, v in schedule["retention"].items() if v is not None) or "no limit"
        print(
            f"schedule {schedule['id']} {schedule['name']!r}: {schedule['cron']} ({schedule['timeZone']}), "
            f"next run {schedule['nextRunAt']}, keeping {rules}"
        )
        preview = await session.execute(GraphQLRequest(PREVIEW, variable_values={"id": schedule["id"]}))
        decisions = preview["retentionPreview"]
        if not decisions:
            print("retention preview: no restore points of this schedule yet")
        for decision in decisions:
            point = decision["restorePoint"]
            verdict = "keep  " if decision["keep"] else "delete"
            print(
                f"{verdict} {point['id']} {point['createdAt'][:16]} {point['label']!r}: {'; '.join(decision['reasons'])}"
            )
    if args.watch > 0:
        await watch(args.url.replace("http", "ws", 1), args.token, args.watch, args.events)
    return 0


def run() -> int:
    try:
        return asyncio.run(main())
    except (OSError, TransportConnectionFailed):
        print("error: cannot reach the server (is it running? see --url)", file=sys.stderr)
        return 1
    except TransportQueryError as error:
        for item in error.errors or [{"message": str(error)}]:
            code = (item.get("extensions") or {}).get("code", "ERROR")
            print(f"error {code}: {item['message']}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(run())
