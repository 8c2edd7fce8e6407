"""Removing a replaced tree after the apply, not during it.

Once the new tree is swapped in, the old one is garbage: nothing reads it (a rollback
applies the snapshot kept in the content store). Deleting tens of thousands of files took
4 to 15 s here, longer than building the new tree, and the system waits for none of it:
so the old tree is renamed to a trash folder beside the target (one rename) and deleted
by a background thread. The thread is not a daemon, so a graceful stop finishes the job;
a killed process leaves the trash folder, and the next apply of that folder removes it
before it starts (`take_out` below). A new apply also waits for a removal still running.
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
import stat
import threading
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

_numbers = itertools.count()
_running: set[threading.Thread] = set()
_lock = threading.Lock()


def trash_name(root: Path) -> Path:
    """A new, unused name beside `root` for a tree on its way out."""
    return root.parent / f".{root.name}.backups-trash-{os.getpid()}-{next(_numbers)}"


def remove_in_background(path: Path, first: Callable[[], None] | None = None) -> None:
    """Delete the folder `path` in a background thread (after running `first` there)."""

    def run() -> None:
        try:
            if first is not None:
                first()
            remove_tree(path)
        except OSError:
            log.exception("could not remove %s; the next apply of its folder tries again", path)
        finally:
            with _lock:
                _running.discard(threading.current_thread())

    thread = threading.Thread(target=run, name=f"remove {path.name}")
    with _lock:
        _running.add(thread)
    thread.start()


def wait_for_removals() -> None:
    """Return once no removal started here is still running."""
    with _lock:
        running = list(_running)
    for thread in running:
        thread.join()


def take_out(root: Path) -> None:
    """Finish removing what earlier applies of `root` put in the trash (this process's
    removals are waited for; a dead process's leftovers are deleted now)."""
    wait_for_removals()
    prefix = f".{root.name}.backups-trash-"
    try:
        names = [name for name in os.listdir(root.parent) if name.startswith(prefix)]
    except FileNotFoundError:
        return
    for name in names:
        remove_tree(root.parent / name)


def remove_tree(path: Path) -> None:
    """Delete a folder tree, including read-only folders in it; a missing path is fine."""
    if not os.path.lexists(path):
        return
    if path.is_symlink() or not path.is_dir():
        path.unlink()
        return
    try:
        shutil.rmtree(path)
    except PermissionError:
        _make_writable(path)
        shutil.rmtree(path)


def _make_writable(folder: Path) -> None:
    os.chmod(folder, stat.S_IRWXU)  # before listing it: a folder may be unreadable
    with os.scandir(folder) as scan:
        inner = [Path(child.path) for child in scan if child.is_dir(follow_symlinks=False)]
    for child in inner:
        _make_writable(child)
