"""The `backups` command line: `backups serve` runs the server; `backups token` manages tokens;
`backups key` exports and imports the age identity of encrypted copies."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from server.cli import keys, tokens
from server.config.config_file import ConfigError, load_config_file
from server.config.environment import ServerConfig, SettingsError, load_config
from server.notices import AuthModeError, refuse_unsafe_auth_mode
from server.storage.data_dir_lock import DataDirInUse, lock_data_dir
from server.storage.db.database_lock import DatabaseInUse, DatabaseUnreachable, lock_database
from server.test_seams import TestSeams, load_test_seams


def serve(config: ServerConfig, seams: TestSeams) -> int:
    """Check the config and take the data folder's lock, then run the server until it stops.
    `seams`: the test seams (BACKUPS_TEST_*, server/test_seams.py), off unless a test sets them."""
    try:  # a bad config file stops the server here, with one line saying what is wrong
        load_config_file(
            config.config_file, data_dir=config.data_dir, local_copies_dir=config.resolved_local_copies_dir
        )
    except ConfigError as error:
        sys.stderr.write(f"backups: {error}\n")
        return 2
    try:  # refused before the data folder is made, let alone locked
        refuse_unsafe_auth_mode(config)
    except AuthModeError as error:
        sys.stderr.write(f"error: {error}\n")
        return 2
    try:  # before anything is read or written: a second server would sweep the first one's blobs
        lock = lock_data_dir(config.data_dir)
    except DataDirInUse as error:
        sys.stderr.write(f"backups: {error}\n")
        return 2
    except OSError as error:
        sys.stderr.write(f"backups: cannot lock the data folder {config.data_dir}: {error.strerror or error}\n")
        return 2
    try:  # likewise one server per database: two would interrupt and sweep each other's work
        database_lock = lock_database(config.resolved_database_url)
    except (DatabaseInUse, DatabaseUnreachable) as error:
        lock.release()
        sys.stderr.write(f"backups: {error}\n")
        return 2
    except OSError as error:
        lock.release()
        sys.stderr.write(f"backups: cannot lock the database: {error.strerror or error}\n")
        return 2
    try:
        return _run(config, seams)
    finally:
        database_lock.release()
        lock.release()


def _run(config: ServerConfig, seams: TestSeams) -> int:
    import uvicorn

    from server.app import create_app
    from server.gc_tuning import tune_for_serving
    from server.notices import AuthModeError

    logging.basicConfig(level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        app = create_app(config, seams=seams)
    except AuthModeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    tune_for_serving()
    uvicorn.run(app, log_level=config.log_level, **uvicorn_options(config))
    return 0


def uvicorn_options(config: ServerConfig) -> dict[str, Any]:
    """How uvicorn serves the app (bar logging): `backups serve` and the test servers alike."""
    from server.web.slow_clients import header_timeout_protocol

    return {
        "host": config.host,
        "port": config.port,
        # Strawberry sends no pings on graphql-transport-ws; uvicorn's keep dead peers out.
        "ws_ping_interval": 20,
        "ws_ping_timeout": 20,
        # Messages are small JSON: compressing each for every subscriber cost more CPU than
        # it saved bytes (a thousand followers of one log, per line).
        "ws_per_message_deflate": False,
        "timeout_graceful_shutdown": 15,
        # A websocket message is a GraphQL request too: the same limit as an HTTP body.
        "ws_max_size": config.max_request_bytes,
        # uvicorn has no limit on how long a request's headers may take: this protocol adds one.
        "http": header_timeout_protocol(config.header_timeout_seconds),
    }


def _serve_options(parser: argparse.ArgumentParser) -> None:
    # SUPPRESS: an option left out sets nothing, so `--port 9000 serve` keeps the 9000.
    parser.add_argument("--host", default=argparse.SUPPRESS, help="address to bind (default 127.0.0.1, BACKUPS_HOST)")
    parser.add_argument("--port", type=int, default=argparse.SUPPRESS, help="port (default 8000, BACKUPS_PORT)")
    parser.add_argument(
        "--config",
        default=argparse.SUPPRESS,
        help="sources config file, TOML (default: BACKUPS_CONFIG; none: settings store only)",
    )


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except SettingsError as error:  # one line naming the setting, like a bad config file
        sys.stderr.write(f"backups: {error}\n")
        return 2


def _main(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(
        prog="backups", description="The Backups API server. With no command (or only --host, --port, --config): serve."
    )
    _serve_options(parser)
    commands = parser.add_subparsers(dest="command")
    serve_cmd = commands.add_parser("serve", help="run the GraphQL server")
    _serve_options(serve_cmd)
    commands.add_parser("export-schema", help="print the GraphQL schema (schema.graphql)")
    tokens.add_parser(commands)
    keys.add_parser(commands)
    args = parser.parse_args(argv)
    if args.command == "export-schema":
        from server.api.schema import schema_text

        sys.stdout.write(schema_text())
        return 0
    if args.command == "token":
        return tokens.run(args, load_config())
    if args.command == "key":
        return keys.run(args, load_config())
    if args.command in (None, "serve"):
        options = {"host": "host", "port": "port", "config": "config_file"}  # option -> field
        overrides = {field: v for k, field in options.items() if (v := getattr(args, k, None)) is not None}
        return serve(load_config(**overrides), load_test_seams())
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
