"""The folders the server reads and writes may not overlap: one check for all of them.

A source folder inside the data folder would have an apply replace the database and the
blobs; the local copies folder inside a source would have an apply delete the copies made
since. Every pair is checked in every direction (inside, containing, the same folder), on
resolved paths. The one nesting allowed is a folder the data folder hosts (the local copies
folder, by default `<data>/local-copies`), and only away from the data folder's own areas.
New kinds of folder (folder locations) join by adding their Folder to the list.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Folder:
    """A folder the server uses, named as a message should name it."""

    label: str  # "source 'site'", "the data folder", ...
    path: Path  # absolute, symlinks resolved
    hosts: frozenset[str] = frozenset()  # labels of the folders allowed strictly inside this one
    part_of: str = ""  # folders that are parts of one whole (the data folder's areas) are not compared


def data_folder(data_dir: Path) -> list[Folder]:
    """The data folder and its own areas, which nothing else may overlap."""
    root = resolve(data_dir)
    return [
        Folder("the data folder", root, hosts=frozenset({LOCAL_COPIES}), part_of="data"),
        Folder("the content store", root / "blobs", part_of="data"),
        Folder("the spool folder", root / "spool", part_of="data"),
    ]


LOCAL_COPIES = "the local copies folder"


def local_copies_folder(path: Path) -> Folder:
    return Folder(LOCAL_COPIES, resolve(path))


def resolve(path: Path) -> Path:
    """The path with every symlink resolved; raises OSError on a loop (never RuntimeError)."""
    try:
        return path.resolve()
    except RuntimeError as error:  # Python < 3.13 reports a symlink loop as RuntimeError
        raise OSError(f"symlink loop in {path}") from error


def first_overlap(folders: Sequence[Folder]) -> tuple[Folder, Folder, str] | None:
    """The first pair that overlaps, with how: (a, b, "is inside" | "contains" | "is the same folder as")."""
    for index, a in enumerate(folders):
        for b in folders[index + 1 :]:
            if a.part_of and a.part_of == b.part_of:
                continue
            if a.path == b.path:
                return a, b, "is the same folder as"
            if a.path.is_relative_to(b.path) and a.label not in b.hosts:
                return a, b, "is inside"
            if b.path.is_relative_to(a.path) and b.label not in a.hosts:
                return a, b, "contains"
    return None


def describe(a: Folder, b: Folder, how: str) -> str:
    """One line naming both folders."""
    return f"{a.label} ({a.path}) {how} {b.label} ({b.path}): the folders must not overlap"
