#!/usr/bin/env python3
"""Create a restore point and follow it live: a progress bar and the log, until it is done.

    export BACKUPS_TOKEN=bk_...        # an operator or admin token
    .venv/bin/python client_examples/create_and_follow.py --label "before upgrade"

Exits 0 when the restore point was made, 1 when the operation failed or was cancelled.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from gql import Client, GraphQLRequest
from gql.transport.aiohttp import AIOHTTPTransport
from gql.transport.exceptions import TransportConnectionFailed, TransportQueryError
from gql.transport.websockets import WebsocketsTransport

DEFAULT_URL = "http://127.0.0.1:8000/graphql"

CREATE = """
mutation Create($label: String, $note: String) {
  createRestorePoint(label: $label, note: $note) {
    operation { id status }
    userErrors { code message field }
  }
}"""

PROGRESS = """
subscription Progress($id: ID!) {
  operationProgress(id: $id) {
    status progress stage
    error { code message }
    restorePoint { id label sizeBytes itemCount checksum }
  }
}"""

LOG = """
subscription Log($id: ID!) {
  operationLog(id: $id) { sequence at level message }
}"""


def bar(fraction: float, stage: str | None, width: int = 30) -> str:
    filled = int(fraction * width)
    return f"\r[{'#' * filled}{'.' * (width - filled)}] {fraction * 100:5.1f}%  {stage or '':<28}"


async def follow(ws_url: str, token: str | None, op_id: str) -> dict:
    """Print progress and log lines as they arrive; return the final operation state."""
    transport = WebsocketsTransport(
        url=ws_url,
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
        # Over websockets the token goes in the connection_init payload.
        init_payload={"authorization": f"Bearer {token}"} if token else {},
    )
    final: dict = {}
    # A bar redrawn with \r is for a terminal; into a pipe or file it would be one long line.
    terminal = sys.stdout.isatty()
    async with Client(transport=transport) as session:  # one connection, two subscriptions

        async def progress() -> None:
            nonlocal final
            async for event in session.subscribe(GraphQLRequest(PROGRESS, variable_values={"id": op_id})):
                final = event["operationProgress"]
                if terminal:
                    print(bar(final["progress"], final["stage"]), end="", flush=True)

        async def log() -> None:
            async for event in session.subscribe(GraphQLRequest(LOG, variable_values={"id": op_id})):
                line = event["operationLog"]
                clear = f"\r{' ' * 72}\r" if terminal else ""
                print(f"{clear}{line['at'][11:19]} {line['level']:<7} {line['message']}", flush=True)

        await asyncio.gather(progress(), log())
    if terminal:
        print()
    elif final:
        print(f"progress {final['progress'] * 100:.1f}%")
    return final


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=DEFAULT_URL, help="the server's GraphQL URL")
    parser.add_argument(
        "--token",
        default=os.environ.get("BACKUPS_TOKEN"),
        help="API token (default: the BACKUPS_TOKEN environment variable)",
    )
    parser.add_argument("--label", help="a name for the restore point")
    parser.add_argument("--note", help="why it is being made")
    args = parser.parse_args()

    headers = {"Authorization": f"Bearer {args.token}"} if args.token else None
    async with Client(transport=AIOHTTPTransport(url=args.url, headers=headers)) as session:
        result = await session.execute(GraphQLRequest(CREATE, variable_values={"label": args.label, "note": args.note}))
    payload = result["createRestorePoint"]
    for error in payload["userErrors"]:
        print(f"error {error['code']}: {error['message']}", file=sys.stderr)
    if payload["operation"] is None:
        return 1

    op_id = payload["operation"]["id"]
    print(f"operation {op_id} started")
    final = await follow(args.url.replace("http", "ws", 1), args.token, op_id)
    if final.get("status") != "SUCCEEDED":
        error = final.get("error") or {}
        print(f"{final.get('status')}: {error.get('code')} {error.get('message')}", file=sys.stderr)
        return 1
    point = final["restorePoint"]
    print(
        f'restore point {point["id"]} "{point["label"]}": {point["itemCount"]} items, '
        f"{point['sizeBytes']} bytes, checksum {point['checksum'][:16]}"
    )
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
