"""Reading a blob back to check it (verifyBackups): where it is, whether it is all there, and
whether its bytes still hash to its name. Blocking: callers run it in a worker thread."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass

from server.storage.blobs.content_store import CHUNK_SIZE, ContentStore
from server.storage.blobs.packs import MAGIC, pack_name


class CheckStopped(Exception):
    """A check stopped because its operation was cancelled."""


@dataclass(frozen=True, slots=True)
class BlobCheck:
    digest: str
    ok: bool
    missing: bool  # not there at all (else, when not ok: there but wrong)
    detail: str  # what was found, for a problem's text ("" when ok)
    bytes_read: int


def check_blob(
    store: ContentStore,
    digest: str,
    on_bytes: Callable[[int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> BlobCheck:
    """Read the blob whole (from its pack range, or its loose file) and hash it."""
    where = store.packs.index.get(digest)
    if where is not None:
        name = pack_name(str(store.packs.folder), where.pack)
        try:
            fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            fallback = _check_loose(store, digest, on_bytes, should_stop)
            if fallback.ok or not fallback.missing:
                return fallback
            return BlobCheck(digest, False, True, f"its pack {where.pack} is gone", 0)
        try:
            data = os.pread(fd, where.size, where.start)
        finally:
            os.close(fd)
        if on_bytes is not None:
            on_bytes(len(data))
        if len(data) < where.size:
            detail = f"its pack {where.pack} is cut short ({len(data)} of its {where.size} bytes are there)"
            return BlobCheck(digest, False, False, detail, len(data))
        if hashlib.sha256(data).hexdigest() != digest:
            detail = f"its bytes in pack {where.pack} (at {where.start}) do not match its SHA-256"
            return BlobCheck(digest, False, False, detail, len(data))
        return BlobCheck(digest, True, False, "", len(data))
    return _check_loose(store, digest, on_bytes, should_stop)


def _check_loose(
    store: ContentStore,
    digest: str,
    on_bytes: Callable[[int], None] | None,
    should_stop: Callable[[], bool] | None,
) -> BlobCheck:
    hasher = hashlib.sha256()
    read = 0
    try:
        with store.path_of(digest).open("rb") as blob:
            while chunk := blob.read(CHUNK_SIZE):
                if should_stop is not None and should_stop():
                    raise CheckStopped(digest)
                hasher.update(chunk)
                read += len(chunk)
                if on_bytes is not None:
                    on_bytes(len(chunk))
    except FileNotFoundError:
        return BlobCheck(digest, False, True, "its file is gone from the content store", read)
    if hasher.hexdigest() != digest:
        return BlobCheck(digest, False, False, f"its file ({read} bytes) does not match its SHA-256", read)
    return BlobCheck(digest, True, False, "", read)


def pack_header_problem(store: ContentStore, pack: str) -> str | None:
    """Why a pack's header is not ours (damaged), or None when it is (or the pack is gone)."""
    try:
        with open(pack_name(str(store.packs.folder), pack), "rb") as file:
            head = file.read(len(MAGIC))
    except FileNotFoundError:
        return None
    return None if head == MAGIC else f"pack {pack}: its header is damaged"
