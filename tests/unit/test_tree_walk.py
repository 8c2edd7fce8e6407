"""Globs and the walk that decides what a folder source manages."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from server.model.globs import GlobError, compile_glob
from server.model.records import EntryKind
from server.sources.folder.walk import PathFilter, walk_tree


@pytest.mark.parametrize(
    ("pattern", "matches", "misses"),
    [
        ("*.tmp", ["a.tmp", "x/y/b.tmp"], ["a.tmpx", "tmp"]),
        (".git", [".git", "sub/.git"], [".gitignore"]),
        ("logs/*.log", ["logs/a.log"], ["logs/x/a.log", "other/logs/a.log"]),
        ("cache/**", ["cache/a", "cache/x/y"], ["cache", "x/cache/a"]),
        ("**/b", ["b", "a/b", "a/x/b"], ["a/bc"]),
        ("a/**/b", ["a/b", "a/x/b", "a/x/y/b"], ["b", "x/a/b"]),
        ("**", ["a", "a/b/c"], []),
        ("file?.[ch]", ["file1.c", "d/fileX.h"], ["file10.c", "file1.o"]),
        ("[!a]*", ["b", "z/cd"], ["abc"]),
    ],
)
def test_glob_matching(pattern: str, matches: list[str], misses: list[str]) -> None:
    regex = compile_glob(pattern)
    assert [p for p in matches if not regex.fullmatch(p)] == []
    assert [p for p in misses if regex.fullmatch(p)] == []


@pytest.mark.parametrize("pattern", ["", "/etc/x", "a/../b", "a\\b", "x[ab", "a//b"])
def test_bad_globs_are_refused(pattern: str) -> None:
    with pytest.raises(GlobError):
        compile_glob(pattern)


def test_walk_lists_managed_and_unmanaged_without_following_links(tmp_path: Path) -> None:
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    (outside / "deep").mkdir(parents=True)
    (outside / "deep" / "secret.txt").write_text("not ours")
    (root / "conf" / "empty").mkdir(parents=True)
    (root / "conf" / "a.yaml").write_text("a: 1")
    (root / "conf" / "debug.log").write_text("noise")
    (root / "cache" / "x").mkdir(parents=True)
    (root / "cache" / "x" / "blob").write_text("cached")
    os.symlink(outside, root / "out")
    os.mkfifo(root / "pipe")

    listing = walk_tree(root, PathFilter(exclude=["*.log", "cache"]))

    managed = {item.path: item.kind for item in listing.managed}
    assert managed == {
        "conf": EntryKind.DIRECTORY,
        "conf/a.yaml": EntryKind.FILE,
        "conf/empty": EntryKind.DIRECTORY,
        "out": EntryKind.SYMLINK,
    }
    assert [item.path for item in listing.managed] == sorted(managed)  # pre-order, sorted
    assert {item.path for item in listing.unmanaged} == {"cache", "conf/debug.log", "pipe"}


def test_include_keeps_only_folders_on_the_way(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "x.yaml").write_text("x")
    (tmp_path / "a" / "notes.txt").write_text("n")
    (tmp_path / "lonely").mkdir()
    listing = walk_tree(tmp_path, PathFilter(include=["*.yaml"]))
    assert [item.path for item in listing.managed] == ["a", "a/b", "a/b/x.yaml"]
    assert {item.path for item in listing.unmanaged} == {"a/notes.txt", "lonely"}


@pytest.mark.parametrize(
    ("include", "exclude"),
    [(["**"], []), (["**/"], ["*.log"]), (["*.yaml", "**"], ["cache"]), (["conf/**"], []), (["*.yaml"], ["a/*"])],
)
def test_filter_answers_as_its_globs_do(include: list[str], exclude: list[str]) -> None:
    """The default's shortcut (no match per path for `**`) gives the globs' own answers."""
    path_filter = PathFilter(include, exclude)
    for path in ["a", "a/b.yaml", "conf/x/y.log", "cache", "deep/er/cache", ".hidden"]:
        assert path_filter.included(path) == any(compile_glob(p).fullmatch(path) for p in include), path
        assert path_filter.excluded(path) == any(compile_glob(p).fullmatch(path) for p in exclude), path
