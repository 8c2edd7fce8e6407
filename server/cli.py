"""The `backups` command line: `backups serve` runs the server."""

from __future__ import annotations

import argparse
import logging
import sys

import uvicorn

from server.config import Settings


def serve(settings: Settings) -> None:
    from server.app import create_app

    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        # Strawberry sends no pings on graphql-transport-ws; uvicorn's keep dead peers out.
        ws_ping_interval=20,
        ws_ping_timeout=20,
        timeout_graceful_shutdown=15,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="backups", description="The Backups API server.")
    commands = parser.add_subparsers(dest="command")
    serve_cmd = commands.add_parser("serve", help="run the GraphQL server")
    serve_cmd.add_argument("--host", help="address to bind (default 127.0.0.1, BACKUPS_HOST)")
    serve_cmd.add_argument("--port", type=int, help="port (default 8000, BACKUPS_PORT)")
    commands.add_parser("export-schema", help="print the GraphQL schema (schema.graphql)")
    args = parser.parse_args(argv)
    if args.command == "export-schema":
        from server.api.schema import schema_text

        sys.stdout.write(schema_text())
        return 0
    if args.command in (None, "serve"):
        overrides = {k: v for k in ("host", "port") if (v := getattr(args, k, None)) is not None}
        serve(Settings(**overrides))
        return 0
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
