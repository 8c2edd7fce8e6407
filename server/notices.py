"""What the server tells the person who starts it: the first admin token, and auth being off.

Written straight to stderr, whatever the log level, framed so that it is hard to miss."""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path

from server.config.environment import ServerConfig

log = logging.getLogger("server.auth")


class AuthModeError(RuntimeError):
    """Authentication off on a server that listens beyond loopback."""


def announce(lines: list[str]) -> None:
    """Print a framed block to stderr."""
    width = max(len(line) for line in lines) + 4
    rule = "=" * width
    text = "\n".join([rule, *(f"  {line}" for line in lines), rule])
    sys.stderr.write(f"\n{text}\n\n")
    sys.stderr.flush()


def refuse_unsafe_auth_mode(config: ServerConfig) -> None:
    """AuthModeError for authentication off on a non-loopback address."""
    if not config.auth_enabled and not config.binds_loopback_only:
        raise AuthModeError(
            f"BACKUPS_AUTH=off is only allowed on a loopback address (127.0.0.1, ::1, localhost), "
            f"not on {config.host!r}: anyone who can reach the server could overwrite the system"
        )


def check_auth_mode(config: ServerConfig) -> None:
    """Refuse authentication off on a non-loopback address; say loudly that it is off."""
    refuse_unsafe_auth_mode(config)
    if config.auth_enabled:
        return
    log.warning("AUTHENTICATION IS OFF: every request may do everything, including apply and delete")
    announce(
        [
            "WARNING: AUTHENTICATION IS OFF (BACKUPS_AUTH=off).",
            f"Anyone who can connect to {config.host}:{config.port} may read, create, apply",
            "and delete restore points. Nothing is recorded of who did what.",
            "Turn it back on by removing BACKUPS_AUTH=off.",
        ]
    )


def cli_command() -> str:
    """The `backups` command as it can be typed in the shell that started this server: plain
    `backups` when that is on its PATH (BACKUPS_SHELL_PATH under `make run`), else the venv's
    script by its path (.venv/bin/backups)."""
    script = Path(sys.executable).with_name("backups")
    # `make run` puts the venv first on the server's own PATH and passes the PATH of the shell
    # that ran it: what matters is what that shell finds.
    found = shutil.which("backups", path=os.environ.get("BACKUPS_SHELL_PATH") or os.environ.get("PATH"))
    if found and script.exists() and Path(found).resolve() == script.resolve():
        return "backups"
    if script.exists():
        relative = os.path.relpath(script)
        return relative if not relative.startswith("..") else str(script)
    return f"{sys.executable} -m server"


def first_token_notice(secret: str, config: ServerConfig) -> None:
    """Show the first admin token, once, with how to use it."""
    url = f"http://{config.host}:{config.port}/graphql"
    backups = cli_command()
    announce(
        [
            "No API tokens existed, so an admin token was created. It is shown only this once:",
            "",
            f"    {secret}",
            "",
            "Send it with every request:   Authorization: Bearer <token>",
            "Over websockets, put it in the connection_init payload:",
            '    {"authorization": "Bearer <token>"}   (or {"token": "<token>"})',
            "For example:  curl -H 'Authorization: Bearer <token>' -H 'Content-Type: application/json' \\",
            f'                   -d \'{{"query": "{{ me {{ name role }} }}"}}\' {url}',
            "",
            "Make tokens for people and scripts with the smallest role they need:",
            f"    {backups} token create --name ci --role operator --expires-in 90d",
            f"Lost this one? On this machine: {backups} token create --name admin2 --role admin",
        ]
    )
