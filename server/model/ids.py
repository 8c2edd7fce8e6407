"""Identifiers: a type prefix, then time-ordered hex, so ids sort by creation and say what they name."""

from __future__ import annotations

import secrets
import time

from server.model.names import is_id


def new_id(prefix: str) -> str:
    """A new id such as `rp_0192f3a1b2c3d4e5f6a7b8c9`: prefix, 48-bit ms time, 48 random bits."""
    return f"{prefix}_{int(time.time() * 1000):012x}{secrets.token_hex(6)}"


def is_well_formed(value: str, prefix: str) -> bool:
    """Whether `value` could be an id we gave out with this prefix. Anything else names
    nothing, and is never sent to the database (PostgreSQL refuses NUL in text, for one)."""
    return is_id(value, prefix)
