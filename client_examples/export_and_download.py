#!/usr/bin/env python3
"""Export a restore point to a local copy, download it through a signed URL, and check it.

    export BACKUPS_TOKEN=bk_...        # an operator or admin token
    .venv/bin/python client_examples/export_and_download.py                 # the newest restore point
    .venv/bin/python client_examples/export_and_download.py rp_... -o ~/backups

The download shows a progress bar and resumes a broken transfer (HTTP Range). Afterwards
every file in the ZIP is checked against the SHA-256 in its manifest, and the manifest
against the restore point's checksum on the server. Exits 0 only if all of that holds.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import sys
import zipfile
from pathlib import Path

import httpx
from gql import Client, GraphQLRequest
from gql.transport.aiohttp import AIOHTTPTransport
from gql.transport.exceptions import TransportConnectionFailed, TransportQueryError
from gql.transport.websockets import WebsocketsTransport

DEFAULT_URL = "http://127.0.0.1:8000/graphql"
# Progress redrawn with \r is for a terminal; into a pipe or file, only the final figures.
TERMINAL = sys.stdout.isatty()

NEWEST = "{ restorePoints(first: 1) { nodes { id label checksum } } }"
POINT = "query($id: ID!) { restorePoint(id: $id) { id label checksum } }"
EXPORT = """mutation($id: ID!) { exportRestorePoint(restorePointId: $id) {
    operation { id } userErrors { code message } } }"""
FOLLOW = """subscription($id: ID!) { operationProgress(id: $id) {
    status progress stage error { code message } localCopy { id fileName sizeBytes } } }"""
LINK = """mutation($id: ID!) { createDownloadUrl(localCopyId: $id, expiresInSeconds: 600) {
    signedUrl { url expiresAt } userErrors { code message } } }"""


def bar(done: int, total: int, width: int = 30) -> str:
    fraction = done / total if total else 1.0
    filled = int(fraction * width)
    return f"\r[{'#' * filled}{'.' * (width - filled)}] {fraction * 100:5.1f}%  {done / 2**20:8.1f} MiB"


def http(url: str, token: str | None) -> Client:
    headers = {"Authorization": f"Bearer {token}"} if token else None
    return Client(transport=AIOHTTPTransport(url=url, headers=headers))


async def export(url: str, token: str | None, point_id: str) -> dict:
    async with http(url, token) as session:
        result = await session.execute(GraphQLRequest(EXPORT, variable_values={"id": point_id}))
    payload = result["exportRestorePoint"]
    if payload["userErrors"]:
        raise SystemExit(f"export refused: {payload['userErrors'][0]['message']}")
    ws = WebsocketsTransport(
        url=url.replace("http", "ws", 1),
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
        init_payload={"authorization": f"Bearer {token}"} if token else {},  # the token, over websockets
    )
    final: dict = {}
    async with Client(transport=ws) as session:
        async for event in session.subscribe(
            GraphQLRequest(FOLLOW, variable_values={"id": payload["operation"]["id"]})
        ):
            final = event["operationProgress"]
            if TERMINAL:
                print(f"\rexporting: {final['progress'] * 100:5.1f}%  {final['stage'] or '':<24}", end="", flush=True)
    print("" if TERMINAL else f"exporting: {final['progress'] * 100:5.1f}%")
    if final["status"] != "SUCCEEDED":
        raise SystemExit(f"export {final['status']}: {(final['error'] or {}).get('message')}")
    return final["localCopy"]


def download(url: str, target: Path) -> None:
    """Stream to `<target>.part`, resuming from what is there, then rename."""
    partial = target.with_name(target.name + ".part")
    have = partial.stat().st_size if partial.exists() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    with httpx.stream("GET", url, headers=headers, timeout=60) as response:
        if response.status_code not in (200, 206):
            raise SystemExit(f"download failed: HTTP {response.status_code} {response.read().decode().strip()}")
        if response.status_code == 200:
            have = 0  # the server sent the whole file
        total = have + int(response.headers["content-length"])
        with partial.open("ab" if have else "wb") as out:
            for chunk in response.iter_bytes(1024 * 1024):
                out.write(chunk)
                have += len(chunk)
                if TERMINAL:
                    print(bar(have, total), end="", flush=True)
    print("" if TERMINAL else bar(have, total).lstrip("\r"))
    partial.replace(target)


def check(path: Path, expected_checksum: str) -> list[str]:
    """Problems found in the downloaded copy; empty when every hash matches."""
    problems = []
    with zipfile.ZipFile(path) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        if manifest["restorePoint"]["checksum"] != expected_checksum:
            problems.append("manifest checksum differs from the restore point's")
        for entry in manifest["entries"]:
            if entry["kind"] == "DIRECTORY":
                continue
            name = f"{entry['source']}/{entry['path']}"
            digest = hashlib.sha256()
            with archive.open(name) as member:
                while chunk := member.read(1024 * 1024):
                    digest.update(chunk)
            if digest.hexdigest() != entry["sha256"]:
                problems.append(f"{name}: SHA-256 mismatch")
    return problems


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("restore_point_id", nargs="?", help="default: the newest restore point")
    parser.add_argument("--url", default=DEFAULT_URL, help="the server's GraphQL URL")
    parser.add_argument(
        "--token",
        default=os.environ.get("BACKUPS_TOKEN"),
        help="API token (default: the BACKUPS_TOKEN environment variable)",
    )
    parser.add_argument("-o", "--output", type=Path, default=Path("."), help="folder to download into")
    args = parser.parse_args()

    async with http(args.url, args.token) as session:
        if args.restore_point_id:
            point = (await session.execute(GraphQLRequest(POINT, variable_values={"id": args.restore_point_id})))[
                "restorePoint"
            ]
        else:
            nodes = (await session.execute(GraphQLRequest(NEWEST)))["restorePoints"]["nodes"]
            point = nodes[0] if nodes else None
    if point is None:
        print("no such restore point", file=sys.stderr)
        return 1
    print(f'restore point {point["id"]} "{point["label"]}"')

    copy = await export(args.url, args.token, point["id"])
    async with http(args.url, args.token) as session:
        link = (await session.execute(GraphQLRequest(LINK, variable_values={"id": copy["id"]})))["createDownloadUrl"]
    if link["userErrors"]:
        print(f"no download link: {link['userErrors'][0]['message']}", file=sys.stderr)
        return 1

    args.output.mkdir(parents=True, exist_ok=True)
    target = args.output / copy["fileName"]
    download(link["signedUrl"]["url"], target)
    problems = check(target, point["checksum"])
    for problem in problems:
        print(f"CHECK FAILED: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"saved {target.resolve()}: {target.stat().st_size} bytes, every SHA-256 matches the manifest")
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
    except (OSError, TransportConnectionFailed, httpx.TransportError):  # refused, unknown host, dropped
        print(f"error: cannot reach the server at {given_url(sys.argv)} (is it running? see --url)", file=sys.stderr)
        return 1
    except TransportQueryError as error:
        # No token, a bad one, or too small a role: say so plainly rather than with a traceback.
        for item in error.errors or [{"message": str(error)}]:
            print(f"error {(item.get('extensions') or {}).get('code', 'ERROR')}: {item['message']}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(run())
