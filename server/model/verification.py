"""Verification: what reading a restore point or a copy back found, and the rotation that
spreads a partial verification (readPercent < 100) over successive runs."""

from __future__ import annotations

import enum
import math
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime


class VerificationState(enum.StrEnum):
    OK = "OK"
    DAMAGED = "DAMAGED"  # something read does not match its SHA-256 (or its structure is broken)
    MISSING = "MISSING"  # something it needs is not there at all


class VerifiedKind(enum.StrEnum):
    """What a stored verification is about; its subject id is that thing's id."""

    RESTORE_POINT = "restore_point"
    LOCAL_COPY = "local_copy"
    REMOTE_COPY = "remote_copy"


@dataclass(frozen=True, slots=True)
class Verification:
    state: VerificationState
    verified_at: datetime
    problems: tuple[str, ...]
    repaired: int  # blobs put back from a good copy


@dataclass(frozen=True, slots=True)
class VerificationTotals:
    """What /metrics says of verification, counted over every run (kept in the database)."""

    last_finished_at: datetime | None
    bytes_read: int
    repaired: int
    cursor: str | None  # the last blob digest a partial run read: the next one starts after it


def worst(states: Sequence[VerificationState]) -> VerificationState:
    """DAMAGED over MISSING over OK."""
    if VerificationState.DAMAGED in states:
        return VerificationState.DAMAGED
    if VerificationState.MISSING in states:
        return VerificationState.MISSING
    return VerificationState.OK


def rotation_window(digests: Sequence[str], percent: int, after: str | None) -> tuple[list[str], str | None]:
    """The share `percent` of `digests` (sorted) that a partial run reads: the next ones in
    SHA-256 order after `after`, wrapping around, so successive runs cover every blob (a blob
    added meanwhile takes its place in the order). Returns them and the new cursor."""
    if not digests:
        return [], after
    if percent >= 100:
        return list(digests), after
    count = max(1, math.ceil(len(digests) * percent / 100))
    start = bisect_right(digests, after) if after is not None else 0
    chosen = [digests[(start + offset) % len(digests)] for offset in range(count)]
    return chosen, chosen[-1]
