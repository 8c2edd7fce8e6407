"""Temporary files a killed server left behind, removed at start-up.

Only names the server itself makes are matched, each where it makes them, so a user's file
is never taken for one. A new kind of temp file adds its pattern here. Blocking; the
caller runs it before any operation starts (a live operation's temp file would match too).
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from server.storage.durability import TEMP_NAME
from server.storage.local_copy.folder import STAGING_FOLDER

# tempfile.mkstemp's random part: 8 of a-z, 0-9 and "_".
_RANDOM = r"[a-z0-9_]{8}"
# Every atomic_write temp file is `.<target>.<random>.partial` (storage/durability.py): an
# export's ZIP, an upload, the apply journal, the signing key. The previous release named an
# upload's `.upload-<random>.partial` and the journal's `.apply-journal-<random>`; a data dir
# it left is cleaned too.
LOCAL_COPY_TEMP = re.compile(rf"{TEMP_NAME.pattern}|\.upload-{_RANDOM}\.partial", re.DOTALL)
DATA_DIR_TEMP = re.compile(rf"{TEMP_NAME.pattern}|\.apply-journal-{_RANDOM}", re.DOTALL)
# <local copies>/.staging: every file there is a copy made only to be sent to a location
# (and its temp files), removed once sent; one found at start-up is a killed run's.
ANY_NAME = re.compile(r".+", re.DOTALL)
# <data>/spool: a spool file is unlinked as soon as it is made (sources/database/spool.py), unless
# the process died in between.
SPOOL_TEMP = re.compile(rf"spool-{_RANDOM}")


@dataclass
class Removed:
    """What was removed, by place, for the one log line."""

    counts: dict[str, int] = field(default_factory=dict)

    def add(self, place: str, count: int) -> None:
        if count:
            self.counts[place] = self.counts.get(place, 0) + count

    def __bool__(self) -> bool:
        return bool(self.counts)

    def summary(self) -> str:
        return ", ".join(f"{count} in {place}" for place, count in self.counts.items())


def remove_matching(folder: Path, pattern: re.Pattern[str]) -> int:
    """Delete the regular files directly in `folder` whose whole name matches; how many."""
    try:
        with os.scandir(folder) as entries:
            stale = [e.path for e in entries if pattern.fullmatch(e.name) and e.is_file(follow_symlinks=False)]
    except FileNotFoundError:
        return 0
    removed = 0
    for path in stale:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
            removed += 1
    return removed


def clear_leftovers(*, data_dir: Path, local_copies_dir: Path) -> Removed:
    """Remove the server's temp files in the data, spool and local copies folders."""
    removed = Removed()
    removed.add("the local copies folder", remove_matching(local_copies_dir, LOCAL_COPY_TEMP))
    removed.add("the local copies staging folder", remove_matching(local_copies_dir / STAGING_FOLDER, ANY_NAME))
    removed.add("the data folder", remove_matching(data_dir, DATA_DIR_TEMP))
    removed.add("the spool folder", remove_matching(data_dir / "spool", SPOOL_TEMP))
    return removed
