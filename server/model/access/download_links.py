"""Signed, expiring download links for local copies (itsdangerous).

A link names one file version: its name plus the fingerprint (inode, size, mtime, ctime) of
the file at signing time, so a link made for a copy that was later deleted or replaced opens
nothing, even one rewritten in place with its mtime put back. The expiry is inside the signed payload, so each link carries its own lifetime.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from itsdangerous import BadSignature, URLSafeSerializer

from server.clock import SYSTEM_CLOCK, Clock
from server.model.errors import InvalidInput
from server.model.records import LocalCopy

SALT = "backups.local-copy-download.v1"


class LinkInvalid(Exception):
    """Tampered with, or signed with another key."""


class LinkExpired(Exception):
    """Was valid, but its time is up."""


@dataclass(frozen=True, slots=True)
class DownloadGrant:
    file_name: str
    fingerprint: str
    expires_at: datetime


class DownloadSigner:
    def __init__(self, secret_key: str, *, max_expiry_seconds: int, clock: Clock = SYSTEM_CLOCK) -> None:
        self._serializer = URLSafeSerializer(secret_key, salt=SALT)
        self.max_expiry_seconds = max_expiry_seconds
        self._clock = clock

    def sign(self, copy: LocalCopy, expires_in_seconds: int) -> tuple[str, datetime]:
        """A token for this version of the copy, valid for `expires_in_seconds`."""
        if not 1 <= expires_in_seconds <= self.max_expiry_seconds:
            raise InvalidInput(
                f"expiresInSeconds must be between 1 and {self.max_expiry_seconds}",
                field="expiresInSeconds",
            )
        # Rounded up: rounded down, a link asked for at x.999 would lose almost a second.
        expires = math.ceil(self._clock.time()) + expires_in_seconds
        token = self._serializer.dumps([copy.file_name, copy.fingerprint, expires])
        return token, datetime.fromtimestamp(expires, UTC)

    def verify(self, token: str) -> DownloadGrant:
        """What the token grants; LinkInvalid if tampered with, LinkExpired if too late."""
        try:
            file_name, fingerprint, expires = self._serializer.loads(token)
        except (BadSignature, ValueError, TypeError):
            raise LinkInvalid from None
        if not isinstance(file_name, str) or not isinstance(fingerprint, str) or not isinstance(expires, int):
            raise LinkInvalid
        if self._clock.time() >= expires:
            raise LinkExpired
        return DownloadGrant(file_name, fingerprint, datetime.fromtimestamp(expires, UTC))
