"""Digests of a manifest: the checksum a restore point shows, and the id it is stored under.

The checksum says "same content" and ignores mtimes, so a copy whose files were touched
still matches. The manifest id covers every field a restore point reads back, mtimes too:
restore points share one stored manifest only when they would read back the very same one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from server.model.records import ManifestEntry

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def manifest_checksum(entries: Sequence[ManifestEntry]) -> str:
    """SHA-256 over the canonical entry list: equal content, equal checksum (mtimes aside)."""
    canonical = [[e.source, e.path, e.kind.value, e.size, e.sha256, e.mode] for e in entries]
    return _digest(canonical)


def manifest_digests(entries: Sequence[ManifestEntry]) -> tuple[str, str]:
    """(checksum, manifest id) in one pass over the entries."""
    checksum = manifest_checksum(entries)
    return checksum, _digest([checksum, [_micros(e.mtime) for e in entries]])


def manifest_id(entries: Sequence[ManifestEntry]) -> str:
    """The id a manifest is stored under: SHA-256 over its checksum and every mtime, in order.

    mtimes count in whole microseconds since the epoch (what both databases keep), so the
    id of entries read back from the database equals the id of the entries written.
    """
    return manifest_digests(entries)[1]


def _micros(moment: datetime | None) -> int | None:
    return None if moment is None else (moment - EPOCH) // _MICROSECOND


def _digest(canonical: list[Any]) -> str:
    return hashlib.sha256(json.dumps(canonical, separators=(",", ":")).encode()).hexdigest()
