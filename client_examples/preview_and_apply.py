#!/usr/bin/env python3
"""Preview what applying a restore point would change, ask, apply it, and print the report.

    export BACKUPS_TOKEN=bk_...        # an admin token (a viewer may preview only)
    .venv/bin/python client_examples/preview_and_apply.py rp_... [--source NAME ...] [--yes]

Shows the changes as a unified diff (colored on a terminal), the changed settings by JSON
path, and sizes and hashes for binary content; then asks for confirmation (type APPLY, or
pass --yes) and applies with the preview's fingerprint, so the server refuses (CONFLICT) if
the configuration changed in between. Exits 0 when applied (or nothing to apply, or
--dry-run), 1 on a refusal or a failed apply, 2 when the answer was no.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys

from gql import Client, GraphQLRequest
from gql.transport.aiohttp import AIOHTTPTransport
from gql.transport.exceptions import TransportConnectionFailed, TransportQueryError

DEFAULT_URL = "http://127.0.0.1:8000/graphql"
SUMMARY = "added removed changed unchanged addedBytes removedBytes changedBytes"

PREVIEW = f"""
query Preview($id: ID!, $sources: [String!], $after: String) {{
  applyPreview(restorePointId: $id, sources: $sources) {{
    summary {{ {SUMMARY} }}
    fingerprint
    changes(first: 50, after: $after) {{
      pageInfo {{ hasNextPage endCursor }}
      nodes {{
        source path kind textDiff truncated
        before {{ kind sizeBytes sha256 mode }} after {{ kind sizeBytes sha256 mode }}
        settingsChanges {{ path before after beforePresent afterPresent }}
      }}
    }}
  }}
}}"""

APPLY = """
mutation Apply($id: ID!, $confirm: String!, $sources: [String!], $fingerprint: String) {
  applyRestorePoint(restorePointId: $id, confirm: $confirm, sources: $sources, expectedFingerprint: $fingerprint) {
    operation { id }
    userErrors { code message field }
  }
}"""

OPERATION = f"""
query Operation($id: ID!) {{
  operation(id: $id) {{ status done error {{ code message }} changes {{ {SUMMARY} }} log {{ message }} }}
}}"""


class Paint:
    """ANSI colors on a terminal, plain text into a pipe or file."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.enabled else text


def show_change(change: dict, paint: Paint) -> None:
    """One change as a person reads it."""
    kind = change["kind"]
    color = {"ADDED": "32", "REMOVED": "31", "CHANGED": "33"}[kind]
    print(paint(f"{kind:<8} {change['source']}/{change['path']}", f"1;{color}"))
    before, after = change["before"], change["after"]
    if before and after and before["mode"] != after["mode"]:
        print(f"  mode {before['mode']:o} -> {after['mode']:o}")
    if change["settingsChanges"] is not None:
        for setting in change["settingsChanges"]:
            old = json.dumps(setting["before"]) if setting["beforePresent"] else "(absent)"
            new = json.dumps(setting["after"]) if setting["afterPresent"] else "(absent)"
            print(f"  {setting['path']}: {paint(old, '31')} -> {paint(new, '32')}")
    elif change["textDiff"]:
        for line in change["textDiff"].splitlines():
            if line.startswith(("+++", "---")):
                print(paint(line, "1"))
            elif line.startswith("+"):
                print(paint(line, "32"))
            elif line.startswith("-"):
                print(paint(line, "31"))
            elif line.startswith("@@"):
                print(paint(line, "36"))
            else:
                print(line)
    elif before and after and before["sha256"] != after["sha256"]:
        print(
            f"  binary: {before['sizeBytes']} bytes {(before['sha256'] or '')[:12]} -> "
            f"{after['sizeBytes']} bytes {(after['sha256'] or '')[:12]}"
        )
    if change["truncated"]:
        print(paint("  (cut at the server's limit: more differs than is shown)", "2"))


def summary_line(summary: dict) -> str:
    return (
        f"{summary['added']} added, {summary['removed']} removed, {summary['changed']} changed, "
        f"{summary['unchanged']} unchanged"
    )


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("restore_point_id")
    parser.add_argument("--source", action="append", dest="sources", help="apply only this source (repeatable)")
    parser.add_argument("--yes", action="store_true", help="apply without asking")
    parser.add_argument("--dry-run", action="store_true", help="show the preview only")
    parser.add_argument("--url", default=DEFAULT_URL, help="the server's GraphQL URL")
    parser.add_argument(
        "--token",
        default=os.environ.get("BACKUPS_TOKEN"),
        help="API token (default: the BACKUPS_TOKEN environment variable)",
    )
    args = parser.parse_args()
    paint = Paint(sys.stdout.isatty() and not os.environ.get("NO_COLOR"))
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else None

    async with Client(transport=AIOHTTPTransport(url=args.url, headers=headers)) as session:
        variables = {"id": args.restore_point_id, "sources": args.sources, "after": None}
        fingerprint, summary = None, None
        while True:  # every page of changes
            preview = (await session.execute(GraphQLRequest(PREVIEW, variable_values=variables)))["applyPreview"]
            fingerprint, summary = preview["fingerprint"], preview["summary"]
            for change in preview["changes"]["nodes"]:
                show_change(change, paint)
            page = preview["changes"]["pageInfo"]
            if not page["hasNextPage"]:
                break
            variables["after"] = page["endCursor"]
        print(paint(f"Applying would change: {summary_line(summary)}.", "1"))
        if summary["added"] + summary["removed"] + summary["changed"] == 0:
            print("Nothing to apply: the configuration already matches the restore point.")
            return 0
        if args.dry_run:
            return 0
        if not args.yes:
            answer = await asyncio.to_thread(input, "Type APPLY to replace the configuration and restart: ")
            if answer.strip() != "APPLY":
                print("Not applied.")
                return 2

        result = await session.execute(
            GraphQLRequest(
                APPLY,
                variable_values={
                    "id": args.restore_point_id,
                    "confirm": args.restore_point_id,
                    "sources": args.sources,
                    "fingerprint": fingerprint,
                },
            )
        )
        payload = result["applyRestorePoint"]
        for error in payload["userErrors"]:
            print(f"error {error['code']}: {error['message']}", file=sys.stderr)
        if payload["operation"] is None:
            return 1
        op_id = payload["operation"]["id"]
        print(f"operation {op_id} started")
        while True:  # a poll keeps the example short; create_and_follow.py shows the live way
            op = (await session.execute(GraphQLRequest(OPERATION, variable_values={"id": op_id})))["operation"]
            if op["done"]:
                break
            await asyncio.sleep(0.5)
    if op["status"] != "SUCCEEDED":
        print(f"{op['status']}: {op['error']['code']} {op['error']['message']}", file=sys.stderr)
        return 1
    print(paint(f"Applied: {summary_line(op['changes'])}.", "1;32"))
    for line in op["log"]:
        if line["message"].startswith(("Added: ", "Removed: ", "Changed: ", "... and ")):
            print(f"  {line['message']}")
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
