"""`backups token create|list|revoke`: manage API tokens on the server's own database."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime

from server.config.environment import ServerConfig
from server.model.access.tokens import ApiToken, Role, parse_duration
from server.model.errors import DomainError
from server.services.access import AccessService
from server.storage.db.database import Database


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `token` and its subcommands."""
    token = commands.add_parser(
        "token",
        help="manage API tokens (uses BACKUPS_DATA_DIR / BACKUPS_DATABASE_URL like the server)",
    )
    actions = token.add_subparsers(dest="token_command", required=True)
    create = actions.add_parser("create", help="create a token and print it (shown only once)")
    create.add_argument("--name", required=True, help="recorded as requestedBy / createdBy")
    create.add_argument("--role", required=True, choices=[r.value for r in Role])
    create.add_argument("--expires-in", help="e.g. 90s, 15m, 12h, 30d, 2w (default: never)")
    listing = actions.add_parser("list", help="list tokens (never their secrets)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    revoke = actions.add_parser("revoke", help="revoke a token: it stops working at once")
    revoke.add_argument("token", metavar="NAME-or-ID")


def run(args: argparse.Namespace, config: ServerConfig) -> int:
    """Run a `token` subcommand; returns the exit code."""
    try:
        return asyncio.run(_run(args, config))
    except DomainError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return 1


async def _run(args: argparse.Namespace, config: ServerConfig) -> int:
    config.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(config.resolved_database_url)
    try:
        await asyncio.to_thread(db.migrate)
        access = AccessService(db)
        if args.token_command == "create":
            expires_in = parse_duration(args.expires_in) if args.expires_in else None
            token, secret = await access.create(
                name=args.name, role=Role(args.role), expires_in=expires_in, created_by="cli"
            )
            print(secret)  # alone on stdout, so `TOKEN=$(backups token create ...)` works
            expiry = f"expires {token.expires_at:%Y-%m-%d %H:%M} UTC" if token.expires_at else "never expires"
            print(
                f"created {token.role.value} token {token.name!r} ({token.id}); it {expiry}.\n"
                "This is the only time it is shown. Send it as `Authorization: Bearer <token>`.",
                file=sys.stderr,
            )
        elif args.token_command == "list":
            _print_tokens(await access.list(), as_json=args.json)
        elif args.token_command == "revoke":
            token = await access.revoke(args.token)
            print(f"revoked {token.role.value} token {token.name!r} ({token.id})", file=sys.stderr)
        return 0
    finally:
        await db.close()


def _print_tokens(tokens: list[ApiToken], *, as_json: bool) -> None:
    now = datetime.now(UTC)
    if as_json:
        for t in tokens:
            print(
                json.dumps(
                    {
                        "id": t.id,
                        "name": t.name,
                        "role": t.role.value,
                        "status": t.status(now).value,
                        "hint": t.hint,
                        "createdAt": t.created_at.isoformat(),
                        "createdBy": t.created_by,
                        "expiresAt": t.expires_at.isoformat() if t.expires_at else None,
                        "revokedAt": t.revoked_at.isoformat() if t.revoked_at else None,
                    }
                )
            )
        return
    if not tokens:
        print("no tokens")
        return
    print(f"{'ID':<32} {'NAME':<20} {'ROLE':<9} {'STATUS':<8} {'TOKEN':<10} {'CREATED (UTC)':<17} EXPIRES (UTC)")
    for t in tokens:
        expires = f"{t.expires_at:%Y-%m-%d %H:%M}" if t.expires_at else "never"
        print(
            f"{t.id:<32} {t.name:<20} {t.role.value:<9} {t.status(now).value:<8} {t.hint + '...':<10} "
            f"{t.created_at:%Y-%m-%d %H:%M}  {expires}"
        )
