#!/usr/bin/env python3
"""Follow an operation's log and survive dropped connections: each reconnect resumes after the
last line seen, so no line is missed or printed twice (a plain re-subscribe would replay it all).

    export BACKUPS_TOKEN=bk_...
    .venv/bin/python client_examples/follow_log.py op_0123... [--url http://127.0.0.1:8000/graphql]

Use `resumable_log` from your own code; it ends when the operation has finished and every line
was sent. Exits 0 then, 1 when the operation is unknown or the server stays unreachable.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import AsyncIterator

from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportError, TransportQueryError
from gql.transport.websockets import WebsocketsTransport

LOG = """
subscription Log($id: ID!, $after: Int) {
  operationLog(id: $id, afterSequence: $after) { sequence at level message }
}"""


async def resumable_log(
    ws_url: str, token: str | None, op_id: str, *, after: int = 0, give_up_after: float = 60.0
) -> AsyncIterator[dict]:
    """Yield the operation's log lines after `after`, reconnecting (with backoff) when the
    connection drops; gives up (ConnectionError) after `give_up_after` seconds without a connection."""
    last, delay, lost_since = after, 0.25, None
    loop = asyncio.get_running_loop()
    while True:
        transport = WebsocketsTransport(
            url=ws_url,
            subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
            init_payload={"authorization": f"Bearer {token}"} if token else {},
        )
        try:
            async with Client(transport=transport) as session:
                lost_since, delay = None, 0.25
                request = GraphQLRequest(LOG, variable_values={"id": op_id, "after": last})
                async for event in session.subscribe(request):
                    line = event["operationLog"]
                    last = line["sequence"]  # the resume point, should the connection drop now
                    yield line
            return  # the subscription completed: the operation is done and every line was sent
        except TransportQueryError:
            raise  # the server answered (unknown operation, no permission): retrying cannot help
        except (TransportError, OSError, TimeoutError):
            if lost_since is None:
                lost_since = loop.time()
                print(f"connection lost; resuming after line {last} once it is back", file=sys.stderr, flush=True)
            if loop.time() - lost_since > give_up_after:
                raise ConnectionError(f"cannot reach the server at {ws_url}") from None
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("operation_id")
    parser.add_argument("--url", default="http://127.0.0.1:8000/graphql", help="the server's GraphQL URL")
    parser.add_argument("--token", default=os.environ.get("BACKUPS_TOKEN"), help="API token (default: $BACKUPS_TOKEN)")
    parser.add_argument("--after", type=int, default=0, help="start after this sequence number")
    parser.add_argument("--give-up-after", type=float, default=60.0, help="seconds without a connection")
    args = parser.parse_args()
    ws_url = "ws" + args.url.removeprefix("http")
    try:
        async for line in resumable_log(
            ws_url, args.token, args.operation_id, after=args.after, give_up_after=args.give_up_after
        ):
            print(f"{line['sequence']:>5} {line['at'][11:19]} {line['level']:<7} {line['message']}", flush=True)
    except TransportQueryError as error:
        print(f"error: {error.errors[0]['message'] if error.errors else error}", file=sys.stderr)
        return 1
    except ConnectionError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
