"""The `backups` command line: `backups serve` runs the server; `backups token` manages tokens."""

from __future__ import annotations

import argparse
import logging
import sys

from server import token_cli
from server.config import Settings
from server.sources.config_file import ConfigError, load_sources
from server.storage.data_dir_lock import DataDirInUse, lock_data_dir


def serve(settings: Settings) -> int:
    """Check the config and take the data folder's lock, then run the server until it stops."""
    try:  # a bad config file stops the server here, with one line saying what is wrong
        load_sources(settings.config, data_dir=settings.data_dir, local_copies_dir=settings.resolved_local_copies_dir)
    except ConfigError as error:
        sys.stderr.write(f"backups: {error}\n")
        return 2
    try:  # before anything is read or written: a second server would sweep the first one's blobs
        lock = lock_data_dir(settings.data_dir)
    except DataDirInUse as error:
        sys.stderr.write(f"backups: {error}\n")
        return 2
    except OSError as error:
        sys.stderr.write(f"backups: cannot lock the data folder {settings.data_dir}: {error.strerror or error}\n")
        return 2
    try:
        return _run(settings)
    finally:
        lock.release()


def _run(settings: Settings) -> int:
    import uvicorn

    from server.app import create_app
    from server.gc_tuning import tune_for_serving
    from server.notices import AuthModeError

    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        app = create_app(settings)
    except AuthModeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    tune_for_serving()
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        # Strawberry sends no pings on graphql-transport-ws; uvicorn's keep dead peers out.
        ws_ping_interval=20,
        ws_ping_timeout=20,
        # Messages are small JSON: compressing each for every subscriber cost more CPU than
        # it saved bytes (a thousand followers of one log, per line).
        ws_per_message_deflate=False,
        timeout_graceful_shutdown=15,
        # A websocket message is a GraphQL request too: the same limit as an HTTP body.
        ws_max_size=settings.max_request_bytes,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="backups", description="The Backups API server.")
    commands = parser.add_subparsers(dest="command")
    serve_cmd = commands.add_parser("serve", help="run the GraphQL server")
    serve_cmd.add_argument("--host", help="address to bind (default 127.0.0.1, BACKUPS_HOST)")
    serve_cmd.add_argument("--port", type=int, help="port (default 8000, BACKUPS_PORT)")
    serve_cmd.add_argument(
        "--config", help="sources config file, TOML (default: BACKUPS_CONFIG; none: settings store only)"
    )
    commands.add_parser("export-schema", help="print the GraphQL schema (schema.graphql)")
    token_cli.add_parser(commands)
    args = parser.parse_args(argv)
    if args.command == "export-schema":
        from server.api.schema import schema_text

        sys.stdout.write(schema_text())
        return 0
    if args.command == "token":
        return token_cli.run(args, Settings())
    if args.command in (None, "serve"):
        overrides = {k: v for k in ("host", "port", "config") if (v := getattr(args, k, None)) is not None}
        return serve(Settings(**overrides))
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
