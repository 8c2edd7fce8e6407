"""API tokens and roles: the records and the pure functions about secrets.

Tokens are 256 random bits, so a plain SHA-256 of the token is enough to store: a slow password
hash (argon2, bcrypt) protects guessable secrets, which these are not, and would cost tens of
milliseconds of CPU on every request while ruling out the indexed lookup by hash.
"""

from __future__ import annotations

import enum
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from server.model.errors import InvalidInput, quoted
from server.model.names import is_token_name

# A recognisable prefix lets secret scanners (and people) tell a leaked token at a glance.
TOKEN_PREFIX = "bk_"
TOKEN_BYTES = 32
MAX_TOKEN_LENGTH = 100
FIRST_ADMIN_NAME = "admin"


class Role(enum.StrEnum):
    """Each role may do everything the one before it may."""

    VIEWER = "viewer"  # queries and subscriptions
    OPERATOR = "operator"  # also create, export, import, upload, download URLs, cancel, dismiss
    ADMIN = "admin"  # also apply, delete, settings changes (tokens: the `backups token` CLI)

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    def covers(self, needed: Role) -> bool:
        """Whether a token of this role may use something that needs `needed`."""
        return self.rank >= needed.rank


class TokenStatus(enum.StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"


@dataclass(frozen=True, slots=True)
class ApiToken:
    """A token's record; the secret itself is never kept."""

    id: str
    name: str
    role: Role
    hint: str  # the first characters of the secret, to tell tokens apart in a list
    created_at: datetime
    created_by: str | None
    expires_at: datetime | None
    revoked_at: datetime | None

    def status(self, now: datetime) -> TokenStatus:
        if self.revoked_at is not None:
            return TokenStatus.REVOKED
        if self.expires_at is not None and self.expires_at <= now:
            return TokenStatus.EXPIRED
        return TokenStatus.ACTIVE


def new_secret() -> str:
    """A fresh token: the prefix, then 256 random bits in URL-safe base64."""
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def hash_secret(secret: str) -> str:
    """What the database keeps instead of the token."""
    return hashlib.sha256(secret.encode()).hexdigest()


def clean_name(name: str) -> str:
    name = name.strip()
    if not is_token_name(name) or name.startswith("tok_"):
        raise InvalidInput(
            "a token name is 1-64 letters, digits, '.', '_', '@' or '-', starting with a "
            "letter or digit (and not 'tok_', which starts token ids)",
            field="name",
        )
    return name


DURATION = re.compile(r"\s*(\d{1,6})\s*([smhdw])\s*")
DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """`90s`, `15m`, `12h`, `30d` or `2w` as a timedelta."""
    match = DURATION.fullmatch(text)
    if match is None:
        raise InvalidInput(f"{quoted(text)} is not a duration such as 90s, 15m, 12h, 30d or 2w", field="expires_in")
    amount, unit = int(match[1]), match[2]
    if amount == 0:
        raise InvalidInput("the expiry must be in the future", field="expires_in")
    return timedelta(**{DURATION_UNITS[unit]: amount})
