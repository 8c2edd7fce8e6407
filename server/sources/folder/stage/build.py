"""Write a restore point's items into a staging folder, checking every file's content as it
is written.

Each file's bytes are hashed on their way from the content store to the new file, so the
copy is also the verification: a blob that does not match its SHA-256 (or its size) stops
the build with CONTENT_DAMAGED before the staged tree can be swapped in. There is no
separate read of the store beforehand, and the bytes checked are the bytes written.

Files are written by a few threads: opening, creating and closing files is system-call
work, and hashlib and file I/O release the GIL, so two threads keep two cores busy.
Everything here blocks: call it in a thread.
"""

from __future__ import annotations

import hashlib
import os
import stat
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from server.model.errors import OperationErrorCode, OperationFailed
from server.model.records import EntryKind, ManifestEntry
from server.sources.base import OpenBlob, StagingStopped
from server.storage.durability import write_all

CHUNK = 1024 * 1024
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_LINK_TARGET = 4096
WORKERS = 2
# Puts a file in place some other way than writing it from the store; False if it did not.
Keep = Callable[[ManifestEntry, str], bool]
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


def build_tree(
    stage: Path,
    planned: list[ManifestEntry],
    open_blob: OpenBlob,
    *,
    on_bytes: Callable[[int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    workers: int | None = None,
    keep: Keep | None = None,
) -> None:
    """Make every folder, link and file of `planned` (sorted by path) under `stage`; a file
    that `keep` puts in place itself (tree_reuse.py) is not written from the store."""
    made: set[str] = {""}  # folders made so far, relative to `stage` ("" is `stage` itself)
    for entry in planned:
        _make_folder(stage, entry.path if entry.kind is EntryKind.DIRECTORY else entry.path.rpartition("/")[0], made)
    for entry in planned:
        if entry.kind is EntryKind.SYMLINK:
            _make_link(stage / entry.path, entry, open_blob)
    # Largest first, so the threads finish together rather than one writing the last big file.
    files = sorted((e for e in planned if e.kind is EntryKind.FILE), key=lambda e: e.size, reverse=True)
    _write_all(
        stage,
        files,
        open_blob,
        on_bytes or (lambda _n: None),
        should_stop or (lambda: False),
        workers or WORKERS,
        keep or (lambda _entry, _target: False),
    )


def _write_all(
    stage: Path,
    files: list[ManifestEntry],
    open_blob: OpenBlob,
    on_bytes: Callable[[int], None],
    should_stop: Callable[[], bool],
    workers: int,
    keep: Keep,
) -> None:
    queue: Iterator[ManifestEntry] = iter(files)
    lock = threading.Lock()
    failures: list[BaseException] = []

    def work() -> None:
        while True:
            with lock:
                if failures:
                    return
                entry = next(queue, None)
            if entry is None:
                return
            try:
                if should_stop():
                    raise StagingStopped
                target = f"{stage}/{entry.path}"  # a string: a Path per file cost more than its link
                if not keep(entry, target):
                    _write_file(target, entry, open_blob)
                on_bytes(entry.size)
            except BaseException as error:  # noqa: BLE001 - handed to the caller's thread below
                with lock:
                    failures.append(error)
                return

    threads = [threading.Thread(target=work, name=f"tree-build-{n}") for n in range(max(1, workers) - 1)]
    for thread in threads:
        thread.start()
    work()  # the calling thread is one of the writers
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]


def _make_folder(stage: Path, path: str, made: set[str]) -> None:
    """Make the folder `path` and any missing parents; `made` remembers them, so each is
    made once without a stat (the stage is new: nothing else is in it yet)."""
    if path in made:
        return
    _make_folder(stage, path.rpartition("/")[0], made)
    try:
        os.mkdir(f"{stage}/{path}", 0o700)
    except FileExistsError:
        if not os.path.isdir(f"{stage}/{path}"):
            raise
    made.add(path)


def _make_link(target: Path, entry: ManifestEntry, open_blob: OpenBlob) -> None:
    assert entry.sha256 is not None
    with open_blob(entry.sha256) as blob:
        link = blob.read(MAX_LINK_TARGET + 1)
    if not link or len(link) > MAX_LINK_TARGET or b"\0" in link:
        raise OperationFailed(OperationErrorCode.INVALID_ENTRY, f"link {entry.path!r} has no usable target")
    if hashlib.sha256(link).hexdigest() != entry.sha256:
        raise OperationFailed(
            OperationErrorCode.CONTENT_DAMAGED, f"the stored content of {entry.path!r} does not match its SHA-256"
        )
    os.symlink(os.fsdecode(link), target)


def _write_file(target: str, entry: ManifestEntry, open_blob: OpenBlob) -> None:
    assert entry.sha256 is not None
    hasher = hashlib.sha256()
    size = 0
    with open_blob(entry.sha256) as blob:
        out = os.open(target, _CREATE, 0o600)
        try:
            # One read for a small file (the common case); 1 MiB chunks for a big one.
            while chunk := blob.read(min(CHUNK, entry.size + 1) if size == 0 else CHUNK):
                hasher.update(chunk)
                write_all(out, chunk)
                size += len(chunk)
            # Mode and mtime now, on the open file, in this thread: nothing writes to it later.
            os.fchmod(out, stat.S_IMODE(entry.mode))
            mtime_ns = ns_since_epoch(entry.mtime)
            if mtime_ns is not None:
                os.utime(out, ns=(mtime_ns, mtime_ns))
        finally:
            os.close(out)
    if size != entry.size or hasher.hexdigest() != entry.sha256:
        raise OperationFailed(
            OperationErrorCode.CONTENT_DAMAGED, f"the stored content of {entry.path!r} does not match its SHA-256"
        )


def ns_since_epoch(moment: datetime | None) -> int | None:
    """Nanoseconds since the epoch, exactly (a float timestamp would round)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - EPOCH) // timedelta(microseconds=1) * 1000
