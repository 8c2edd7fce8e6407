"""What a local copy holds, read from the copy itself without importing it: its entries, and the
content of chosen members, each checked against the manifest (size and SHA-256).

A plain copy is a ZIP with its central directory: members are opened where they lie. An
encrypted copy (`.zip.age`) cannot be read in the middle: its manifest is its first member
(decrypted alone, as listing a folder does), and members are found by decrypting the copy as
a stream and walking its local headers (stream-unzip) up to the last member wanted. Nothing
decrypted is written to disk here; memory stays bounded by the queue between the two threads.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import BinaryIO

from stream_unzip import UnzipError, stream_unzip

from server.model.errors import InvalidArchive
from server.model.records import EntryKind, ManifestEntry
from server.storage.encryption import EncryptedDamaged, KeyMissing, Keyring, is_encrypted_name
from server.storage.local_copy.manifest import MANIFEST_NAME, ArchiveLimits, decode_manifest, member_name
from server.storage.local_copy.reader import CHUNK_SIZE, LocalCopyReader, read_manifest

Chunks = Iterator[bytes]
_QUEUED_CHUNKS = 16  # decrypted chunks waiting for the reader: at most about 16 x 64 KiB


class MemberDamaged(Exception):
    """A member's content does not match the manifest (size or SHA-256): never use what was read."""

    def __init__(self, entry: ManifestEntry, detail: str) -> None:
        super().__init__(f"{entry.source}/{entry.path}: {detail}")
        self.entry = entry


def copy_entries(path: Path, keyring: Keyring | None, limits: ArchiveLimits = ArchiveLimits()) -> list[ManifestEntry]:
    """The copy's manifest entries (blocking). InvalidArchive for a bad copy; KeyMissing for an
    encrypted copy this server has no key for; EncryptedDamaged when it does not decrypt."""
    if not is_encrypted_name(path.name):
        return read_manifest(path, limits).entries
    if keyring is None:
        raise KeyMissing(f"{path.name} is encrypted, and this server has no keys")
    member, data = keyring.peek_first_member(path, limits.max_manifest_bytes)
    if member != MANIFEST_NAME:
        raise InvalidArchive(f"its first member is {member!r}, not {MANIFEST_NAME}")
    return decode_manifest(data, limits).entries


def read_members(
    path: Path,
    keyring: Keyring | None,
    wanted: Sequence[ManifestEntry],
    limits: ArchiveLimits = ArchiveLimits(),
) -> AbstractContextManager[Iterator[tuple[ManifestEntry, Chunks]]]:
    """The content of each wanted entry that has content (files, links), in the copy's order
    (blocking). Read each one's chunks to the end before asking for the next: the last read
    raises MemberDamaged when the content differs from its entry. A wanted entry the copy
    does not hold raises InvalidArchive."""
    files = [entry for entry in wanted if entry.kind is not EntryKind.DIRECTORY]
    if is_encrypted_name(path.name):
        if keyring is None:
            raise KeyMissing(f"{path.name} is encrypted, and this server has no keys")
        return _encrypted_members(path, keyring, files)
    return _plain_members(path, files, limits)


@contextmanager
def _plain_members(
    path: Path, files: Sequence[ManifestEntry], limits: ArchiveLimits
) -> Iterator[Iterator[tuple[ManifestEntry, Chunks]]]:
    with LocalCopyReader(path, limits) as copy:
        wanted = {(entry.source, entry.path): entry for entry in files}
        in_copy = {(entry.source, entry.path) for entry in copy.manifest.entries}
        if missing := [key for key in wanted if key not in in_copy]:
            raise InvalidArchive(f"it holds no member {'/'.join(missing[0])!r}")

        def members() -> Iterator[tuple[ManifestEntry, Chunks]]:
            for listed in copy.manifest.entries:  # the copy's order, as an encrypted copy gives them
                if (entry := wanted.get((listed.source, listed.path))) is not None:
                    yield entry, _member_chunks(entry, copy.open_member(entry))

        yield members()


def _member_chunks(entry: ManifestEntry, stream: BinaryIO) -> Chunks:
    """The reader's member stream checks size and SHA-256 itself, against `entry`."""
    with stream:
        try:
            while chunk := stream.read(CHUNK_SIZE):
                yield chunk
        except InvalidArchive as damaged:
            raise MemberDamaged(entry, damaged.message) from None


@contextmanager
def _encrypted_members(
    path: Path, keyring: Keyring, files: Sequence[ManifestEntry]
) -> Iterator[Iterator[tuple[ManifestEntry, Chunks]]]:
    by_name = {member_name(entry).encode(): entry for entry in files}
    plain = _Decrypting(path, keyring)
    try:

        def members() -> Iterator[tuple[ManifestEntry, Chunks]]:
            left = dict(by_name)
            try:
                for name, _, chunks in stream_unzip(plain):
                    entry = left.pop(name, None)
                    if entry is None:
                        for _ in chunks:  # stream-unzip needs each member read before the next
                            pass
                        continue
                    yield entry, _checked(entry, chunks)
                    if not left:
                        return
            except UnzipError as error:
                raise InvalidArchive(f"its content is not a readable ZIP ({type(error).__name__})") from None
            if left:
                missing = next(iter(left.values()))
                raise InvalidArchive(f"it holds no member {member_name(missing)!r}")

        yield members()
    finally:
        plain.close()


def _checked(entry: ManifestEntry, chunks: Chunks) -> Chunks:
    digest, size = hashlib.sha256(), 0
    for chunk in chunks:
        size += len(chunk)
        if size > entry.size:
            raise MemberDamaged(entry, f"longer than its {entry.size} bytes")
        digest.update(chunk)
        yield chunk
    if size != entry.size:
        raise MemberDamaged(entry, f"{size} bytes where the manifest says {entry.size}")
    if digest.hexdigest() != entry.sha256:
        raise MemberDamaged(entry, "its SHA-256 differs from the manifest's")


class _Decrypting:
    """The plain text of an encrypted copy as an iterator of chunks: pyrage decrypts in a
    thread and hands each chunk over a bounded queue (it pushes, stream-unzip pulls)."""

    _END = object()

    def __init__(self, path: Path, keyring: Keyring) -> None:
        self._chunks: queue.Queue[object] = queue.Queue(maxsize=_QUEUED_CHUNKS)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(path, keyring), name="copy-decrypt", daemon=True)
        self._thread.start()

    def _run(self, path: Path, keyring: Keyring) -> None:
        outcome: object = self._END
        try:
            keyring.decrypt(path, _Handing(self._put), should_stop=self._stopped.is_set)  # type: ignore[arg-type]
        except (KeyMissing, EncryptedDamaged, OSError) as error:
            outcome = error
        except Exception as error:  # a stop asked by close(), or pyrage's own wrapping of it
            outcome = error if not self._stopped.is_set() else self._END
        self._put(outcome, final=True)

    def _put(self, item: object, final: bool = False) -> None:
        while not self._stopped.is_set():
            try:
                self._chunks.put(item, timeout=0.1)
                return
            except queue.Full:
                continue
        if not final:
            raise _Stop

    def __iter__(self) -> Iterator[bytes]:
        while True:
            item = self._chunks.get()
            if item is self._END:
                return
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, bytes)
            yield item

    def close(self) -> None:
        self._stopped.set()
        self._thread.join()


class _Stop(Exception):
    """The reader closed: the decrypting thread stops writing."""


class _Handing:
    """The output pyrage writes the plain text to: each write goes over the queue."""

    def __init__(self, put: Callable[[object], None]) -> None:
        self._put = put

    def write(self, data: bytes) -> int:
        self._put(bytes(data))
        return len(data)
