#!/usr/bin/env python3
"""Get back one item of a restore point: list what it holds, download one item, or put one back.

    export BACKUPS_TOKEN=bk_...        # viewer: ls; operator: get; admin: put
    .venv/bin/python client_examples/restore_item.py rp_... ls [SOURCE [FOLDER]]
    .venv/bin/python client_examples/restore_item.py rp_... get SOURCE PATH [-o FILE]
    .venv/bin/python client_examples/restore_item.py rp_... put SOURCE PATH [--yes] [--dry-run]

`ls` pages through a folder (a source's top level without FOLDER, every source's without
SOURCE). `get` downloads through a signed link: a file as its bytes, a folder as a ZIP, a
settings module as JSON, a table as CSV. `put` previews what putting the item back would
change, asks (type RESTORE, or pass --yes) and puts back only that item, with the preview's
fingerprint so the server refuses (CONFLICT) if the configuration changed in between. In the
settings source PATH may name one setting: "audio.json#/volume". Exits 0 on success, 1 on an
error or refusal, 2 when the answer was no.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from urllib.parse import unquote

import httpx
from gql import Client, GraphQLRequest
from gql.transport.aiohttp import AIOHTTPTransport
from gql.transport.exceptions import TransportConnectionFailed, TransportQueryError

DEFAULT_URL = "http://127.0.0.1:8000/graphql"

ITEMS = """
query Items($id: ID!, $source: String, $path: String, $after: String) {
  restorePoint(id: $id) {
    items(source: $source, path: $path, first: 100, after: $after) {
      pageInfo { hasNextPage endCursor }
      edges { node { source path kind sizeBytes modifiedAt rowCount } }
    }
  }
}"""

LINK = """
mutation Link($id: ID!, $source: String!, $path: String!) {
  createItemDownloadUrl(restorePointId: $id, source: $source, path: $path) {
    signedUrl { url expiresAt }
    userErrors { code message field }
  }
}"""

PREVIEW = """
query Preview($id: ID!, $items: [ItemSelection!]) {
  applyPreview(restorePointId: $id, items: $items) {
    fingerprint
    summary { added removed changed }
    changes(first: 100) { nodes { kind source path settingsChanges { path before after } } }
  }
}"""

APPLY = """
mutation Apply($id: ID!, $confirm: String!, $items: [ItemSelection!], $fingerprint: String) {
  applyRestorePoint(restorePointId: $id, confirm: $confirm, items: $items, expectedFingerprint: $fingerprint) {
    operation { id }
    userErrors { code message field }
  }
}"""

OPERATION = "query Op($id: ID!) { operation(id: $id) { status done error { code message } } }"


def describe(node: dict) -> str:
    size = "" if node["sizeBytes"] is None else f"{node['sizeBytes']:>12}"
    rows = "" if node["rowCount"] is None else f"  {node['rowCount']} rows"
    return f"{node['kind']:<8}{size:>13}  {node['source']}/{node['path']}{rows}"


def offered_name(disposition: str) -> str:
    """The file name a Content-Disposition offers (RFC 6266: filename* first), without any folder."""
    for part in disposition.split(";"):
        key, _, value = part.strip().partition("=")
        if key.lower() == "filename*" and value.lower().startswith("utf-8''"):
            return Path(unquote(value[7:])).name
    for part in disposition.split(";"):
        key, _, value = part.strip().partition("=")
        if key.lower() == "filename":
            return Path(value.strip('"')).name
    return ""


async def list_items(session: Client, point: str, source: str | None, folder: str | None) -> int:
    variables = {"id": point, "source": source, "path": folder, "after": None}
    while True:
        items = (await session.execute(GraphQLRequest(ITEMS, variable_values=variables)))["restorePoint"]["items"]
        for edge in items["edges"]:
            print(describe(edge["node"]))
        if not items["pageInfo"]["hasNextPage"]:
            return 0
        variables["after"] = items["pageInfo"]["endCursor"]


async def download(session: Client, point: str, source: str, path: str, out: str | None) -> int:
    variables = {"id": point, "source": source, "path": path}
    payload = (await session.execute(GraphQLRequest(LINK, variable_values=variables)))["createItemDownloadUrl"]
    if payload["userErrors"]:
        for error in payload["userErrors"]:
            print(f"error {error['code']}: {error['message']}", file=sys.stderr)
        return 1
    url = payload["signedUrl"]["url"]
    async with httpx.AsyncClient(timeout=None) as http, http.stream("GET", url) as response:
        if response.status_code != 200:
            print(
                f"error: the download answered {response.status_code}: {(await response.aread())[:300]!r}",
                file=sys.stderr,
            )
            return 1
        # The server names the file (Content-Disposition): a folder's ZIP, a table's CSV.
        target = Path(out) if out else Path(offered_name(response.headers.get("content-disposition", "")) or "item")
        size = 0
        with target.open("wb") as file:
            async for chunk in response.aiter_bytes():
                file.write(chunk)
                size += len(chunk)
    print(f"{target}: {size} bytes")
    return 0


async def put_back(session: Client, point: str, source: str, path: str, yes: bool, dry_run: bool) -> int:
    items = [{"source": source, "paths": [path]}]
    preview = (await session.execute(GraphQLRequest(PREVIEW, variable_values={"id": point, "items": items})))[
        "applyPreview"
    ]
    for change in preview["changes"]["nodes"]:
        print(f"{change['kind']:<8} {change['source']}/{change['path']}")
        for setting in change["settingsChanges"] or []:
            print(f"  {setting['path']}: {setting['before']!r} -> {setting['after']!r}")
    summary = preview["summary"]
    if summary["added"] + summary["removed"] + summary["changed"] == 0:
        print("Nothing to put back: it is already as the restore point has it.")
        return 0
    if dry_run:
        return 0
    if not yes:
        answer = await asyncio.to_thread(input, f"Type RESTORE to put back {source}/{path}: ")
        if answer.strip() != "RESTORE":
            print("Not restored.")
            return 2
    variables = {"id": point, "confirm": point, "items": items, "fingerprint": preview["fingerprint"]}
    payload = (await session.execute(GraphQLRequest(APPLY, variable_values=variables)))["applyRestorePoint"]
    for error in payload["userErrors"]:
        print(f"error {error['code']}: {error['message']}", file=sys.stderr)
    if payload["operation"] is None:
        return 1
    op_id = payload["operation"]["id"]
    while True:  # a poll keeps the example short; create_and_follow.py shows the live way
        op = (await session.execute(GraphQLRequest(OPERATION, variable_values={"id": op_id})))["operation"]
        if op["done"]:
            break
        await asyncio.sleep(0.2)
    if op["status"] != "SUCCEEDED":
        print(f"{op['status']}: {op['error']['code']} {op['error']['message']}", file=sys.stderr)
        return 1
    print(f"Put back {source}/{path} (operation {op_id}).")
    return 0


async def main() -> int:
    common = argparse.ArgumentParser(add_help=False)  # after the command: `... ls --url URL`
    common.add_argument("--url", default=DEFAULT_URL, help="the server's GraphQL URL")
    common.add_argument("--token", default=os.environ.get("BACKUPS_TOKEN"), help="API token (default: BACKUPS_TOKEN)")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("restore_point_id")
    commands = parser.add_subparsers(dest="command", required=True)
    ls = commands.add_parser("ls", parents=[common], help="list a folder's items")
    ls.add_argument("source", nargs="?")
    ls.add_argument("folder", nargs="?")
    get = commands.add_parser("get", parents=[common], help="download one item")
    get.add_argument("source")
    get.add_argument("path")
    get.add_argument("-o", "--output", help="the file to write (default: the name the server gives)")
    put = commands.add_parser("put", parents=[common], help="put one item back in place")
    put.add_argument("source")
    put.add_argument("path")
    put.add_argument("--yes", action="store_true", help="put it back without asking")
    put.add_argument("--dry-run", action="store_true", help="show the preview only")
    args = parser.parse_args()
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else None
    async with Client(transport=AIOHTTPTransport(url=args.url, headers=headers)) as session:
        if args.command == "ls":
            return await list_items(session, args.restore_point_id, args.source, args.folder)
        if args.command == "get":
            return await download(session, args.restore_point_id, args.source, args.path, args.output)
        return await put_back(session, args.restore_point_id, args.source, args.path, args.yes, args.dry_run)


def run() -> int:
    try:
        return asyncio.run(main())
    except (OSError, TransportConnectionFailed, httpx.TransportError):
        print("error: cannot reach the server (is it running? see --url)", file=sys.stderr)
        return 1
    except TransportQueryError as error:
        for item in error.errors or [{"message": str(error)}]:
            code = (item.get("extensions") or {}).get("code", "ERROR")
            print(f"error {code}: {item['message']}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(run())
