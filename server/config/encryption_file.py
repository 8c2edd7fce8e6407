"""The `[encryption]` table of the config file: recovery recipients for encrypted copies.

    [encryption]
    recipients = ["age1..."]   # public keys whose private halves are kept away from the server

Every encrypted copy is encrypted to the server's own identity and to each of these, so any
one of the private halves alone decrypts it (see README, "Encrypted copies"). A bad entry is a
ConfigError of one line naming the file and the problem, like the rest of the file.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pyrage
from pyrage import x25519

from server.config.sources_file import ConfigError

KEYS = {"recipients"}


def load_recovery_recipients(path: Path | None) -> tuple[str, ...]:
    """The recovery recipients the config file names (none without a file or table)."""
    if path is None:
        return ()
    where = f"config file {path}"
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"{where}: cannot be read: {error.strerror or error}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{where}: not valid TOML: {error}") from None
    table = document.get("encryption", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: encryption must be an [encryption] table")
    unknown = sorted(set(table) - KEYS)
    if unknown:
        raise ConfigError(f"{where}: [encryption]: unknown key {unknown[0]!r} (allowed: recipients)")
    recipients = table.get("recipients", [])
    if not isinstance(recipients, list) or not all(isinstance(r, str) for r in recipients):
        raise ConfigError(f'{where}: [encryption]: recipients must be a list of strings ("age1...")')
    for index, text in enumerate(recipients):
        problem = _recipient_problem(text)
        if problem is not None:
            raise ConfigError(f"{where}: [encryption]: recipients[{index}] {problem}")
    return tuple(dict.fromkeys(recipients))


def _recipient_problem(text: str) -> str | None:
    shown = text if len(text) <= 80 else text[:77] + "..."
    if text.startswith("AGE-SECRET-KEY-"):
        return "is a private identity, not a recipient: give its public key (age1...) and keep the identity away"
    if not text.startswith("age1"):
        return f"{shown!r} is not an age X25519 recipient (age1...)"
    try:
        x25519.Recipient.from_str(text)
    except pyrage.RecipientError as error:
        return f"{shown!r} is not a valid age recipient ({error})"
    return None
