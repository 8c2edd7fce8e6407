"""Signed, expiring download links (itsdangerous): for local copies, and for one item of a
restore point.

A local copy's link names one file version: its name plus the fingerprint (inode, size, mtime,
ctime) of the file at signing time, so a link made for a copy that was later deleted or
replaced opens nothing, even one rewritten in place with its mtime put back. An item's link
names the restore point (which never changes once made), the source, the manifest path and the
kind it was found to be. The expiry is inside the signed payload, so each link carries its own
lifetime; each kind of link has its own salt, so one is never taken for the other.
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
ITEM_SALT = "backups.item-download.v1"


class LinkInvalid(Exception):
    """Tampered with, or signed with another key."""


class LinkExpired(Exception):
    """Was valid, but its time is up."""


@dataclass(frozen=True, slots=True)
class DownloadGrant:
    file_name: str
    fingerprint: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class ItemLink:
    """One item to download: where it is read from (`origin` "restorePoint"; local copies to
    come), that thing's id, the source, the manifest path ("" for a source's top level) and
    the item's kind (an ItemKind's value) when the link was made."""

    origin: str
    origin_id: str
    source: str
    entry_path: str
    kind: str


class DownloadSigner:
    def __init__(self, secret_key: str, *, max_expiry_seconds: int, clock: Clock = SYSTEM_CLOCK) -> None:
        self._serializer = URLSafeSerializer(secret_key, salt=SALT)
        self._items = URLSafeSerializer(secret_key, salt=ITEM_SALT)
        self.max_expiry_seconds = max_expiry_seconds
        self._clock = clock

    def sign(self, copy: LocalCopy, expires_in_seconds: int) -> tuple[str, datetime]:
        """A token for this version of the copy, valid for `expires_in_seconds`."""
        expires = self._expiry(expires_in_seconds)
        token = self._serializer.dumps([copy.file_name, copy.fingerprint, expires])
        return token, datetime.fromtimestamp(expires, UTC)

    def sign_item(self, link: ItemLink, expires_in_seconds: int) -> tuple[str, datetime]:
        """A token for one item, valid for `expires_in_seconds` (the same bounds as a copy's)."""
        expires = self._expiry(expires_in_seconds)
        token = self._items.dumps([link.origin, link.origin_id, link.source, link.entry_path, link.kind, expires])
        return token, datetime.fromtimestamp(expires, UTC)

    def verify_item(self, token: str) -> tuple[ItemLink, datetime]:
        """The item a token grants and until when; LinkInvalid if tampered with, LinkExpired if too late."""
        try:
            *fields, expires = self._items.loads(token)
            link = ItemLink(*fields)
        except (BadSignature, ValueError, TypeError):
            raise LinkInvalid from None
        if not all(isinstance(value, str) for value in fields) or not isinstance(expires, int):
            raise LinkInvalid
        if self._clock.time() >= expires:
            raise LinkExpired
        return link, datetime.fromtimestamp(expires, UTC)

    def _expiry(self, expires_in_seconds: int) -> int:
        if not 1 <= expires_in_seconds <= self.max_expiry_seconds:
            raise InvalidInput(
                f"expiresInSeconds must be between 1 and {self.max_expiry_seconds}",
                field="expiresInSeconds",
            )
        # Rounded up: rounded down, a link asked for at x.999 would lose almost a second.
        return math.ceil(self._clock.time()) + expires_in_seconds

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
