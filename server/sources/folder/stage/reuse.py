"""Keeping the live tree's unchanged files when a new tree is staged.

Most applies put back a tree that differs from the live one in a few files. A live file
the hash cache vouches for (its stat unchanged since it was hashed to the entry's SHA-256)
with the entry's size, mode and mtime already is the entry: it is hard-linked into the
staged tree instead of being written again from the content store. The swap then makes
the same inode live under the same path, so nothing that was right is rewritten, and the
old tree's deletion frees only what really changed.

What it costs, and why it is safe:
- The blob of a kept file is not read (the verification pass still checks it is there):
  the apply never copies it, so damage in it cannot reach the live tree.
- Only files with one link are kept, so a file never ends up shared with a path outside
  the tree that it was not shared with before.
- A hard link changes the file's ctime, which the hash cache keys on: the new key is
  recorded at once (`relinked`), so the snapshot before the apply, the read-back and the
  next capture still need not read it; the same is done when the old tree's second name
  is removed (`unlink_old_names`).
- A writer changing a kept file while the apply runs changes it in the new tree too; any
  write after the stat check moves the file's mtime, so its digest is not remembered and
  the read-back reads it again and reports the difference.
Blocking: runs in the staging threads.
"""

from __future__ import annotations

import errno
import os
import stat
import threading
from collections.abc import Mapping
from pathlib import Path

from server.model.records import ManifestEntry
from server.sources.folder.hash_cache import FileKey, HashCache, file_key
from server.sources.folder.stage.build import ns_since_epoch

# Errors that only mean "no link here": the file is written from the store instead.
_CANNOT_LINK = {errno.EPERM, errno.EXDEV, errno.EMLINK, errno.ENOTSUP, errno.EACCES}


class LiveFiles:
    """The live tree's files the hash cache knows, and which of them staging kept."""

    def __init__(self, root: Path, known: Mapping[str, tuple[FileKey, str]]) -> None:
        self.root = root
        self._prefix = str(root).rstrip("/") + "/"
        self._known = known
        self._lock = threading.Lock()
        # relative path -> (key after the link, digest)
        self.relinked: dict[str, tuple[FileKey, str]] = {}

    def keep(self, entry: ManifestEntry, target: str) -> bool:
        """Hard-link the live file at the entry's path to `target` if it is the entry
        already; False (nothing made) when it is not, or cannot be linked."""
        absolute = self._prefix + entry.path
        hint = self._known.get(absolute)
        if hint is None or hint[1] != entry.sha256:
            return False
        try:
            info = os.lstat(absolute)
        except OSError:
            return False
        if not _is_entry(info, hint[0], entry):
            return False
        try:
            os.link(absolute, target, follow_symlinks=False)
        except OSError as error:
            if error.errno in _CANNOT_LINK or error.errno == errno.ENOENT:
                return False
            raise
        after = os.lstat(target)
        if (after.st_dev, after.st_ino, after.st_size, after.st_mtime_ns) != hint[0][:4]:
            os.unlink(target)  # replaced or written between the check and the link
            return False
        with self._lock:
            self.relinked[entry.path] = (file_key(after), hint[1])
        return True

    def remember(self, cache: HashCache, *, started_ns: int) -> None:
        """Record the kept files' new keys (the link moved their ctime)."""
        prefix = self._prefix
        rows = [(prefix + path, key, digest) for path, (key, digest) in self.relinked.items()]
        cache.remember_all_written(rows, written_after_ns=started_ns)


def _is_entry(info: os.stat_result, cached: FileKey, entry: ManifestEntry) -> bool:
    mtime_ns = ns_since_epoch(entry.mtime)
    return (
        file_key(info) == cached
        and stat.S_ISREG(info.st_mode)
        and info.st_nlink == 1
        and info.st_size == entry.size
        and stat.S_IMODE(info.st_mode) == stat.S_IMODE(entry.mode)
        and mtime_ns is not None
        and info.st_mtime_ns // 1000 * 1000 == mtime_ns
    )


def unlink_old_names(
    old: Path, root: Path, relinked: Mapping[str, tuple[FileKey, str]], cache: HashCache | None, *, started_ns: int
) -> None:
    """Remove the second names kept files have in the replaced tree `old`, keeping the hash
    cache right: a file untouched since it was kept gets its key after the unlink."""
    prefix = str(root).rstrip("/") + "/"
    old_prefix = str(old).rstrip("/") + "/"  # strings: a Path per file cost more than its unlink
    rows: list[tuple[str, FileKey, str]] = []
    for path, (key, digest) in relinked.items():
        live = prefix + path
        try:
            before = os.lstat(live)
            os.unlink(old_prefix + path)
            after = os.lstat(live)
        except OSError:
            continue  # gone or replaced since: the tree removal deals with the rest
        if file_key(before) == key and _same_but_ctime(before, after):
            rows.append((live, file_key(after), digest))
    if cache is not None:
        cache.remember_all_written(rows, written_after_ns=started_ns)


def _same_but_ctime(before: os.stat_result, after: os.stat_result) -> bool:
    return (before.st_dev, before.st_ino, before.st_size, before.st_mtime_ns) == (
        after.st_dev,
        after.st_ino,
        after.st_size,
        after.st_mtime_ns,
    )
