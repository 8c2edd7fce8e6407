"""`backups key export|import`: the server's age identity, for encrypted copies.

`export` prints the server identity as an emergency kit (keep it offline: it reads every
encrypted copy this server made). `import FILE|-` installs an identity (a kit, a recovery
identity, an `age-keygen` file) beside the server's own, so copies made for it can be read:
the disaster-recovery step on a new machine. A wrong or damaged identity changes nothing.
"""

from __future__ import annotations

import argparse
import sys

from server.config.config_file import ConfigError, load_recovery_recipients
from server.config.environment import ServerConfig
from server.storage.encryption import BadIdentity, Keyring, emergency_kit

MAX_IDENTITY_FILE = 1024 * 1024


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `key` and its subcommands."""
    key = commands.add_parser("key", help="the server's age identity for encrypted copies (uses BACKUPS_DATA_DIR)")
    actions = key.add_subparsers(dest="key_command", required=True)
    actions.add_parser("export", help="print the server identity as an emergency kit (keep it offline)")
    install = actions.add_parser("import", help="install an age identity (a kit or an age-keygen file) to decrypt with")
    install.add_argument("file", metavar="FILE|-", help="the identity file, or - for standard input")


def run(args: argparse.Namespace, config: ServerConfig) -> int:
    """Run a `key` subcommand; returns the exit code."""
    try:
        keyring = Keyring(config.data_dir, load_recovery_recipients(config.config_file))
    except ConfigError as error:
        sys.stderr.write(f"backups: {error}\n")
        return 2
    if args.key_command == "export":
        sys.stdout.write(emergency_kit(keyring.own()))
        return 0
    source = "standard input" if args.file == "-" else args.file
    try:
        if args.file == "-":
            text = sys.stdin.read(MAX_IDENTITY_FILE + 1)
        else:
            with open(args.file, encoding="utf-8") as f:
                text = f.read(MAX_IDENTITY_FILE + 1)
    except OSError as error:
        sys.stderr.write(f"backups: key import: {source} cannot be read: {error.strerror or error}\n")
        return 2
    except UnicodeDecodeError:
        sys.stderr.write(f"backups: key import: {source} is not an age identity file (not text)\n")
        return 2
    try:
        if len(text) > MAX_IDENTITY_FILE:
            raise BadIdentity(f"it is larger than {MAX_IDENTITY_FILE} bytes")
        added = keyring.install(text)
    except BadIdentity as error:
        sys.stderr.write(f"backups: key import: {source}: {error}; nothing was changed\n")
        return 2
    for public in added:
        sys.stderr.write(f"installed the identity of {public}: copies encrypted to it can now be imported\n")
    if not added:
        sys.stderr.write("this server already has that identity; nothing was changed\n")
    return 0
