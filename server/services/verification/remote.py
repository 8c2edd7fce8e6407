"""Remote copies read back from their locations (verifyBackups with `copies`): each one
downloaded into a temporary file, hashed against the SHA-256 recorded at upload (or the one it
had when last found OK), then read whole as a local copy is. A location that cannot be reached
is not verified this time (the log says why); its copies are never called damaged for it."""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

from server.clock import Clock, utc_now
from server.model.records import LogLevel, RemoteCopy
from server.model.verification import Verification, VerificationState, VerifiedKind
from server.operations.live import OperationCancelled, OperationContext
from server.services.local_copies.encryption import CopyEncryption
from server.services.verification.copies import CopyFinding, VerifyStopped, verify_file
from server.storage.db import verification_repo
from server.storage.db.database import Database
from server.storage.durability import TEMP_SUFFIX, temp_prefix
from server.storage.local_copy.folder import LocalCopyFolder
from server.storage.locations.store import LocationStore, LocationUnavailable, TransferCancelled, parse_remote_copy_id


@dataclass(frozen=True, slots=True)
class RemoteFinding:
    finding: CopyFinding
    sha256: str | None  # of the bytes read
    bytes_read: int


def read_back(
    store: LocationStore,
    copy: RemoteCopy,
    known_sha: str | None,
    folder: LocalCopyFolder,
    encryption: CopyEncryption,
    on_bytes: Callable[[int], None],
    should_stop: Callable[[], bool],
) -> RemoteFinding:
    """Download one copy into a hidden temporary file of the local copies folder (removed
    after), hashing it on the way, and check it. LocationUnavailable when the location stops
    answering (not verified this time)."""
    fd, name = tempfile.mkstemp(dir=folder.root, prefix=temp_prefix(copy.file_name), suffix=TEMP_SUFFIX)
    temp = Path(name)
    try:
        hasher = hashlib.sha256()
        size = 0
        with os.fdopen(fd, "wb") as out:

            class _Hashing:
                def write(self, chunk: bytes) -> int:
                    nonlocal size
                    hasher.update(chunk)
                    size += len(chunk)
                    return out.write(chunk)

            try:
                sink = cast(BinaryIO, _Hashing())
                store.download(copy.file_name, sink, on_bytes=on_bytes, should_stop=should_stop)
            except FileNotFoundError:
                gone = CopyFinding(
                    VerificationState.MISSING, (f"{copy.file_name}: gone from location {copy.location!r}",)
                )
                return RemoteFinding(gone, None, size)
            except TransferCancelled:
                raise VerifyStopped(copy.file_name) from None
        sha = hasher.hexdigest()
        expected = copy.sha256 or known_sha
        if size != copy.size:
            said = f"{copy.file_name}: {size} bytes read back, {copy.size} listed"
            return RemoteFinding(CopyFinding(VerificationState.DAMAGED, (said,)), sha, size)
        if expected is not None and sha != expected:
            what = "recorded at upload" if copy.sha256 else "it had when last verified"
            said = f"{copy.file_name}: its bytes do not match the SHA-256 {what}"
            return RemoteFinding(CopyFinding(VerificationState.DAMAGED, (said,)), sha, size)
        finding = verify_file(temp, copy.file_name, copy.encrypted, folder, encryption, lambda _: None, should_stop)
        return RemoteFinding(finding, sha, size)
    finally:
        temp.unlink(missing_ok=True)


async def verify_remote(
    ctx: OperationContext,
    *,
    db: Database,
    locations: Mapping[str, LocationStore],
    folder: LocalCopyFolder,
    encryption: CopyEncryption,
    clock: Clock,
) -> int:
    """Read back every copy at every location and store what each one is; returns the bytes read."""
    async with db.read() as session:
        known = await verification_repo.known_shas(session, VerifiedKind.REMOTE_COPY)
    read = 0
    for name, store in locations.items():
        ctx.checkpoint()
        try:
            listed = await asyncio.to_thread(store.list)
            listed = await asyncio.to_thread(store.details, listed)
        except LocationUnavailable as error:
            ctx.log(f"Remote copies at {name!r} were not verified this time: {error.message}.", LogLevel.WARNING)
            continue
        found: dict[str, tuple[CopyFinding, str | None]] = {}
        for copy in listed:
            ctx.checkpoint()

            def work(
                on_bytes: Callable[[int], None],
                should_stop: Callable[[], bool],
                copy: RemoteCopy = copy,
                store: LocationStore = store,
            ) -> RemoteFinding:
                return read_back(store, copy, known.get(copy.id), folder, encryption, on_bytes, should_stop)

            try:
                result = await ctx.run_blocking(
                    work, total=copy.size, start=0.0, end=1.0, stage=f"Reading back {copy.file_name} at {name}"
                )
            except LocationUnavailable as error:
                ctx.log(f"Remote copy {copy.file_name} was not verified this time: {error.message}.", LogLevel.WARNING)
                continue
            except VerifyStopped:
                ctx.checkpoint()
                raise OperationCancelled("cancel") from None
            read += result.bytes_read
            if result.finding.state is None:
                ctx.log(f"Remote copy {copy.file_name} at {name!r} was not verified: {result.finding.note}.")
                continue
            found[copy.id] = (result.finding, result.sha256)
        # A copy verified before that the location no longer lists is gone from it.
        for copy_id in known:
            parsed = parse_remote_copy_id(copy_id)
            if (
                parsed is not None
                and parsed[0] == name
                and copy_id not in found
                and copy_id not in {c.id for c in listed}
            ):
                gone = CopyFinding(VerificationState.MISSING, (f"{parsed[1]}: gone from location {name!r}",))
                found[copy_id] = (gone, None)
        async with db.write() as session:
            for copy_id, (finding, sha) in found.items():
                assert finding.state is not None
                ok = finding.state is VerificationState.OK
                file_name = (parse_remote_copy_id(copy_id) or (name, copy_id))[1]
                if ok:
                    ctx.log(f"Remote copy {file_name} at {name!r}: OK.")
                else:
                    problems = "; ".join(finding.problems)
                    ctx.log(
                        f"Remote copy {file_name} at {name!r} is {finding.state.value}: {problems}.", LogLevel.WARNING
                    )
                record = Verification(finding.state, utc_now(clock), finding.problems, 0)
                keep = sha if ok else known.get(copy_id)
                await verification_repo.save(session, VerifiedKind.REMOTE_COPY, copy_id, record, sha256=keep)
    return read
