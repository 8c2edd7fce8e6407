"""Repair: a damaged or missing blob put back from a good copy. First the plain local copies
whose manifests list its SHA-256 (only the member is read); then, for what is still missing,
the encrypted local copies (decrypted) and the copies at every location (downloaded), each
made a temporary plain ZIP and read like a local copy. Nothing is ever written from content
whose SHA-256 does not match."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path

from server.model.errors import InvalidArchive, NotFound
from server.model.records import LocalCopy, LogLevel, ManifestEntry, RemoteCopy
from server.operations.live import OperationContext
from server.services.local_copies.delete import hold_copy
from server.services.verification.copies import entries_wanted, put_back_from, repair_sources
from server.services.verification.tools import Tools
from server.storage.blobs.checks import BlobCheck
from server.storage.blobs.content_store import DigestMismatch
from server.storage.db import packs_repo
from server.storage.durability import TEMP_SUFFIX, temp_prefix
from server.storage.encryption import EncryptedDamaged, KeyMissing
from server.storage.locations.store import LocationStore, LocationUnavailable


async def repair(
    ctx: OperationContext, tools: Tools, copies: list[LocalCopy], bad: dict[str, BlobCheck]
) -> dict[str, str]:
    """Put back each bad blob that a good copy holds; returns the digests repaired, with
    where each came from."""
    ctx.progress(0.9, "Repairing")
    sources = await asyncio.to_thread(repair_sources, tools.folder, copies, set(bad))
    repaired: dict[str, str] = {}
    for digest in sorted(bad):
        ctx.checkpoint()
        for copy, entry in sources.get(digest, []):
            try:
                _, hold = await hold_copy(tools.folder, tools.holds, copy.id)
            except NotFound:
                continue  # deleted since it was listed
            try:
                path = tools.folder.path_of(copy)
                if await _put_back(ctx, tools, entry, path, f"local copy {copy.file_name}"):
                    repaired[digest] = f"local copy {copy.file_name}"
                    break
            finally:
                hold.release()
    left = set(bad) - set(repaired)
    if left:
        await _from_whole_copies(ctx, tools, copies, left, repaired)
    for digest in sorted(set(bad) - set(repaired)):
        ctx.log(f"Blob {digest}: no good copy holds it; it cannot be repaired here.", LogLevel.WARNING)
    return repaired


async def _put_back(ctx: OperationContext, tools: Tools, entry: ManifestEntry, path: Path, where: str) -> bool:
    """Write one blob back from a plain copy's member; whether it is now in place."""
    digest = entry.sha256
    assert digest is not None
    try:
        # Read and written outside the keeper's lock (a big blob must not hold up a capture); held
        # restore points keep the blob referenced, so nothing collects it meanwhile.
        written = await asyncio.to_thread(put_back_from, tools.store, path, tools.folder, entry)
        try:
            await tools.steps.reach(ctx, "verify-repair")  # a test may kill the server here
        except BaseException:
            await asyncio.to_thread(tools.store.drop_put_back, written)
            raise
        async with tools.keeper.lock:  # nothing collects or moves packed blobs meanwhile
            await asyncio.to_thread(tools.store.place_back, written, digest)
            if digest in tools.store.packs.index:
                async with tools.db.write() as session:  # the row first: a crash leaves the pack read
                    await packs_repo.remove_blobs(session, [digest])
                tools.store.packs.drop(digest)
    except (InvalidArchive, DigestMismatch, OSError) as error:
        reason = getattr(error, "message", None) or str(error)
        ctx.log(
            f"Blob {digest}: {where} holds it, but its item {entry.source}/{entry.path} cannot be used "
            f"({reason}); nothing was written from it.",
            LogLevel.WARNING,
        )
        return False
    ctx.log(f"Blob {digest} repaired from {where} ({entry.source}/{entry.path}).")
    return True


async def _from_whole_copies(
    ctx: OperationContext, tools: Tools, copies: list[LocalCopy], left: set[str], repaired: dict[str, str]
) -> None:
    """Look for the blobs still `left` in the encrypted local copies and at every location."""
    for copy in copies:
        if not left:
            return
        if not copy.encrypted:
            continue
        try:
            _, hold = await hold_copy(tools.folder, tools.holds, copy.id)
        except NotFound:
            continue
        try:
            plain = await _blocking(ctx, partial(tools.encryption.decrypt_to_temp, tools.folder.path_of(copy)))
        except (KeyMissing, EncryptedDamaged, OSError):
            continue
        finally:
            hold.release()
        await _from_plain(ctx, tools, plain, f"local copy {copy.file_name}", left, repaired)
    for name, store in tools.locations.items():
        if not left:
            return
        try:
            listed: list[RemoteCopy] = await asyncio.to_thread(store.list)
        except LocationUnavailable as error:
            ctx.log(f"Location {name!r} was not searched for a good copy: {error.message}.", LogLevel.WARNING)
            continue
        for remote in listed:
            if not left:
                return
            try:
                plain = await _blocking(ctx, partial(_download, tools, store, remote))
            except (LocationUnavailable, KeyMissing, EncryptedDamaged, OSError):
                continue
            await _from_plain(ctx, tools, plain, f"remote copy {remote.file_name} at {name!r}", left, repaired)


async def _from_plain(
    ctx: OperationContext, tools: Tools, plain: Path, where: str, left: set[str], repaired: dict[str, str]
) -> None:
    """Put back what a temporary plain copy holds of the blobs `left`; it is removed after."""
    try:
        for entry in await asyncio.to_thread(entries_wanted, plain, tools.folder, left):
            assert entry.sha256 is not None
            if await _put_back(ctx, tools, entry, plain, where):
                repaired[entry.sha256] = where
                left.discard(entry.sha256)
    finally:
        await asyncio.to_thread(plain.unlink, missing_ok=True)


def _download(
    tools: Tools, store: LocationStore, copy: RemoteCopy, on_bytes: Callable[[int], None], stop: Callable[[], bool]
) -> Path:
    """A remote copy as a temporary plain ZIP in the local copies folder (decrypted if it is encrypted)."""
    fd, name = tempfile.mkstemp(dir=tools.folder.root, prefix=temp_prefix(copy.file_name), suffix=TEMP_SUFFIX)
    temp = Path(name)
    try:
        with open(fd, "wb") as out:
            store.download(copy.file_name, out, on_bytes=on_bytes, should_stop=stop)
        if not copy.encrypted:
            return temp
        return tools.encryption.decrypt_to_temp(temp, on_bytes, stop)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    finally:
        if copy.encrypted:
            temp.unlink(missing_ok=True)


async def _blocking(ctx: OperationContext, work: Callable[[Callable[[int], None], Callable[[], bool]], Path]) -> Path:
    return await ctx.run_blocking(work, total=1, start=0.9, end=0.9)
