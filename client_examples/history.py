#!/usr/bin/env python3
"""List restore points, newest first, page by page: a table, or JSON Lines with --json.

export BACKUPS_TOKEN=bk_...        # any role: viewer is enough
.venv/bin/python client_examples/history.py
.venv/bin/python client_examples/history.py --json --page-size 50 | jq .label
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator

from gql import Client, GraphQLRequest
from gql.transport.aiohttp import AIOHTTPTransport
from gql.transport.exceptions import TransportConnectionFailed, TransportQueryError

DEFAULT_URL = "http://127.0.0.1:8000/graphql"

PAGE = """
query History($first: Int!, $after: String) {
  restorePoints(first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    nodes { id label note origin createdAt createdBy sizeBytes itemCount checksum }
  }
}"""


async def pages(url: str, token: str | None, page_size: int) -> AsyncIterator[tuple[int, list[dict]]]:
    """Each page of restore points with the total count, following the cursor to the end."""
    headers = {"Authorization": f"Bearer {token}"} if token else None
    async with Client(transport=AIOHTTPTransport(url=url, headers=headers)) as session:
        after = None
        while True:
            result = await session.execute(GraphQLRequest(PAGE, variable_values={"first": page_size, "after": after}))
            connection = result["restorePoints"]
            yield connection["totalCount"], connection["nodes"]
            if not connection["pageInfo"]["hasNextPage"]:
                return
            after = connection["pageInfo"]["endCursor"]


def size(count: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024  # type: ignore[assignment]
    return str(count)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=DEFAULT_URL, help="the server's GraphQL URL")
    parser.add_argument(
        "--token",
        default=os.environ.get("BACKUPS_TOKEN"),
        help="API token (default: the BACKUPS_TOKEN environment variable)",
    )
    parser.add_argument("--page-size", type=int, default=20, help="restore points per request (1-100)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per line")
    args = parser.parse_args()

    header = f"{'CREATED (UTC)':<20} {'ORIGIN':<9} {'SIZE':>10} {'ITEMS':>6}  {'ID':<27} LABEL"
    shown = 0
    async for total, nodes in pages(args.url, args.token, args.page_size):
        for point in nodes:
            if args.json:
                print(json.dumps(point))
                continue
            if shown == 0:
                print(header)
            created = point["createdAt"][:19].replace("T", " ")
            print(
                f"{created:<20} {point['origin']:<9} {size(point['sizeBytes']):>10} "
                f"{point['itemCount']:>6}  {point['id']:<27} {point['label']}"
            )
            shown += 1
        if not args.json and nodes:
            print(f"-- {shown} of {total}", file=sys.stderr)
    if not args.json and shown == 0:
        print("no restore points yet")
    return 0


def given_url(argv: list[str]) -> str:
    """The --url this was run with (or the default), to name it when the server cannot be reached."""
    for index, arg in enumerate(argv):
        if arg == "--url" and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith("--url="):
            return arg.removeprefix("--url=")
    return DEFAULT_URL


def run() -> int:
    try:
        return asyncio.run(main())
    except (OSError, TransportConnectionFailed):  # refused, unknown host, dropped
        print(f"error: cannot reach the server at {given_url(sys.argv)} (is it running? see --url)", file=sys.stderr)
        return 1
    except TransportQueryError as error:
        # No token, a bad one, or too small a role: say so plainly rather than with a traceback.
        for item in error.errors or [{"message": str(error)}]:
            code = (item.get("extensions") or {}).get("code", "ERROR")
            print(f"error {code}: {item['message']}", file=sys.stderr)
        if any((item.get("extensions") or {}).get("code") == "UNAUTHENTICATED" for item in error.errors or []):
            print("Pass an API token with --token or the BACKUPS_TOKEN environment variable.", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(run())
