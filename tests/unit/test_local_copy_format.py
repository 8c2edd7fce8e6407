"""The local copy ZIP format: round trip, atomic writing, and refusal of hostile archives."""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import shutil
import stat
import subprocess
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from server.model.errors import InvalidArchive
from server.model.records import EntryKind, ManifestEntry, RestorePoint, RestorePointOrigin
from server.storage.blobs.content_store import ContentStore
from server.storage.local_copy.format import (
    MANIFEST_NAME,
    ArchiveLimits,
    ContentMismatch,
    CopyCancelled,
    member_name,
    open_local_copy,
    read_manifest,
    verify_local_copy,
    write_local_copy,
)
from tests.support.archives import (
    Member,
    Parts,
    build,
    patch_header,
    take_apart,
)

CREATED = datetime(2026, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)
MTIME = datetime(2025, 12, 31, 23, 59, 58, tzinfo=UTC)
REGULAR = (stat.S_IFREG | 0o644) << 16
JSON_MEMBER = "settings/modules/network.json"
DIRECTORY = (stat.S_IFDIR | 0o755) << 16 | 0x10

NETWORK_JSON = json.dumps({"dns": ["1.1.1.1"] * 50}, indent=2).encode()

# (source, path, kind, content, mode); directories have no content.
SAMPLE: list[tuple[str, str, EntryKind, bytes | None, int]] = [
    ("settings", "modules/network.json", EntryKind.FILE, NETWORK_JSON, 0o644),
    ("directory", "random.bin", EntryKind.FILE, os.urandom(200_000), 0o600),
    ("directory", "photo.jpg", EntryKind.FILE, os.urandom(70_000), 0o644),  # incompressible
    ("directory", "scripts", EntryKind.DIRECTORY, None, 0o755),
    ("directory", "scripts/run.sh", EntryKind.FILE, b"#!/bin/sh\necho hi\n" * 20, 0o755),
    ("directory", "scripts/current", EntryKind.SYMLINK, b"../releases/v2", 0o777),
    ("directory", "café/naïve ☃.yaml", EntryKind.FILE, "clé: valeur\n".encode() * 30, 0o644),
    ("directory", "empty.txt", EntryKind.FILE, b"", 0o644),
]


def restore_point(entries: list[ManifestEntry]) -> RestorePoint:
    """A restore point describing `entries`."""
    return RestorePoint(
        id="rp-0001",
        label="Before the upgrade",
        note="kept by hand",
        origin=RestorePointOrigin.MANUAL,
        created_at=CREATED,
        created_by="admin",
        size_bytes=sum(e.size for e in entries),
        stored_bytes=0,
        item_count=len(entries),
        checksum="ab" * 32,
        server_version="1.2.3",
    )


@dataclass
class Sample:
    """A valid copy written from a real content store, and what went into it."""

    path: Path
    store: ContentStore
    entries: list[ManifestEntry]
    content: dict[str, bytes]  # member name -> bytes


def fill_store(store: ContentStore) -> tuple[list[ManifestEntry], dict[str, bytes]]:
    entries, content = [], {}
    for source, path, kind, data, mode in SAMPLE:
        digest, size = (None, 0) if data is None else store.put_bytes(data)[:2]
        mtime = None if data is None else MTIME
        entry = ManifestEntry(source, path, kind, size, digest, mode, mtime)
        entries.append(entry)
        if data is not None:
            content[member_name(entry)] = data
    return entries, content


def write(target: Path, entries: list[ManifestEntry], open_blob: Any, **options: Any) -> int:
    """write_local_copy with a restore point made up for `entries`."""
    return write_local_copy(
        target,
        restore_point=restore_point(entries),
        entries=entries,
        open_blob=open_blob,
        **options,
    )


def write_sample(tmp_path: Path, **options: Any) -> Sample:
    store = ContentStore(tmp_path / "blobs")
    entries, content = fill_store(store)
    folder = tmp_path / "copies"
    folder.mkdir(exist_ok=True)
    target = folder / "copy.zip"
    write(target, entries, store.open, **options)
    return Sample(target, store, entries, content)


# ---- round trip ----------------------------------------------------------------------------


def test_round_trip_returns_identical_entries_and_content(tmp_path: Path) -> None:
    sample = write_sample(tmp_path)
    manifest = verify_local_copy(sample.path)
    assert manifest.entries == sample.entries
    assert manifest.restore_point["id"] == "rp-0001"
    assert manifest.restore_point["createdAt"] == CREATED
    assert manifest.restore_point["origin"] is RestorePointOrigin.MANUAL
    with open_local_copy(sample.path) as copy:
        for entry in copy.manifest.entries:
            with copy.open_member(entry) as stream:
                data = stream.read()
            assert data == sample.content.get(member_name(entry), b"")

    assert manifest.restore_point["itemsOnly"] is None  # a whole restore point: no key at all


def test_an_items_only_restore_point_keeps_its_items_in_the_copy(tmp_path: Path) -> None:
    """The safety restore point of an item apply in place holds some items only: its copy says
    which, so the one imported from it is applied as those items too (never whole sources)."""
    store = ContentStore(tmp_path / "blobs")
    entries, _ = fill_store(store)
    target = tmp_path / "copy.zip"
    point = replace(restore_point(entries), origin=RestorePointOrigin.SAFETY, items_only=(("site", "conf.d"),))
    write_local_copy(target, restore_point=point, entries=entries, open_blob=store.open)
    assert verify_local_copy(target).restore_point["itemsOnly"] == (("site", "conf.d"),)


def test_imported_content_lands_in_a_content_store(tmp_path: Path) -> None:
    sample = write_sample(tmp_path)
    target_store = ContentStore(tmp_path / "imported")
    with open_local_copy(sample.path) as copy:
        copy.verify()
        for entry in copy.manifest.entries:
            if entry.kind is not EntryKind.DIRECTORY:
                with copy.open_member(entry) as stream:
                    digest, size, _ = target_store.put_stream(stream)
                assert (digest, size) == (entry.sha256, entry.size)


def test_copy_is_a_plain_zip_with_manifest_first(tmp_path: Path) -> None:
    sample = write_sample(tmp_path)
    with zipfile.ZipFile(sample.path) as archive:
        assert archive.testzip() is None
        infos = {info.filename: info for info in archive.infolist()}
        assert archive.infolist()[0].filename == MANIFEST_NAME
        assert json.loads(archive.read(MANIFEST_NAME))["formatVersion"] == 1
        unicode_name = "directory/café/naïve ☃.yaml"
        assert archive.read(unicode_name) == sample.content[unicode_name]
    assert infos["directory/scripts/"].is_dir()
    # A symlink travels as a text file holding its target, never as a ZIP link.
    assert infos["directory/scripts/current"].external_attr >> 16 == stat.S_IFREG | 0o644
    assert infos["directory/scripts/run.sh"].external_attr >> 16 == stat.S_IFREG | 0o755
    assert infos["settings/modules/network.json"].compress_type == zipfile.ZIP_DEFLATED
    assert infos["directory/photo.jpg"].compress_type == zipfile.ZIP_STORED


@pytest.mark.skipif(shutil.which("unzip") is None, reason="no unzip binary")
def test_unzip_lists_and_tests_the_copy(tmp_path: Path) -> None:
    sample = write_sample(tmp_path)
    listing = subprocess.run(["unzip", "-l", str(sample.path)], capture_output=True, check=True)
    assert b"manifest.json" in listing.stdout and b"directory/scripts/run.sh" in listing.stdout
    subprocess.run(["unzip", "-tq", str(sample.path)], capture_output=True, check=True)


def test_progress_reports_every_content_byte(tmp_path: Path) -> None:
    written: list[int] = []
    sample = write_sample(tmp_path, on_bytes=written.append)
    read: list[int] = []
    verify_local_copy(sample.path, on_bytes=read.append)
    assert sum(written) == sum(read) == sum(e.size for e in sample.entries)


def test_highly_compressible_large_file_stays_within_the_ratio_import_accepts(tmp_path: Path) -> None:
    # A header then zeros: the first 64 KiB compress modestly, the whole file 1000-fold.
    store = ContentStore(tmp_path / "blobs")
    data = os.urandom(20_000) + bytes(3 * 1024 * 1024)
    digest, size, _ = store.put_bytes(data)
    entries = [ManifestEntry("directory", "disk.img", EntryKind.FILE, size, digest)]
    target = tmp_path / "copy.zip"
    write(target, entries, store.open)
    assert verify_local_copy(target).entries == entries
    # Still compressed, as far as the limit allows: the rest went in stored deflate blocks.
    assert size / 200 < target.stat().st_size < size / 50


# ---- atomic writing ------------------------------------------------------------------------


def test_cancelled_write_leaves_no_file_and_keeps_the_old_target(tmp_path: Path) -> None:
    store = ContentStore(tmp_path / "blobs")
    entries, _ = fill_store(store)
    folder = tmp_path / "copies"
    folder.mkdir()
    target = folder / "copy.zip"
    target.write_bytes(b"previous copy")
    seen_while_writing: list[list[str]] = []

    def stop_after_a_few_members() -> bool:
        seen_while_writing.append(sorted(os.listdir(folder)))
        return len(seen_while_writing) > 3

    with pytest.raises(CopyCancelled):
        write(target, entries, store.open, should_stop=stop_after_a_few_members)
    # Mid-write the folder held the old copy and one hidden temp file beside it.
    temp_name = seen_while_writing[-1][0]
    assert temp_name.startswith(".copy.zip.") and seen_while_writing[-1][1] == "copy.zip"
    assert os.listdir(folder) == ["copy.zip"]
    assert target.read_bytes() == b"previous copy"


def test_blob_not_matching_its_entry_fails_and_leaves_nothing(tmp_path: Path) -> None:
    store = ContentStore(tmp_path / "blobs")
    entries, _ = fill_store(store)

    def damaged(digest: str) -> BinaryIO:
        return io.BytesIO(b"not what the manifest says")

    with pytest.raises(ContentMismatch, match="does not match"):
        write(tmp_path / "copy.zip", entries, damaged)
    assert sorted(os.listdir(tmp_path)) == ["blobs"]


def test_writer_refuses_entries_import_would_refuse(tmp_path: Path) -> None:
    bad = ManifestEntry("directory", "../etc/passwd", EntryKind.FILE, 1, "ab" * 32)
    with pytest.raises(ValueError, match="escapes its folder"):
        write(tmp_path / "copy.zip", [bad], open)
    assert os.listdir(tmp_path) == []


@pytest.mark.skipif(not os.environ.get("BACKUPS_SLOW_TESTS"), reason="writes 4.5 GiB; set BACKUPS_SLOW_TESTS=1")
def test_zip64_entry_and_archive_over_4_gib(tmp_path: Path) -> None:
    big_size = 4 * 1024**3 + 512 * 1024**2
    # 1 MiB of noise, repeated: deflate cannot reach back a whole MiB, so the member is
    # stored and the archive really passes 4 GiB.
    chunk = random.Random(7).randbytes(1024 * 1024)
    big_digest = hashlib.sha256()
    for _ in range(big_size // len(chunk)):
        big_digest.update(chunk)
    small = b"a member whose header lies past 4 GiB"
    small_digest = hashlib.sha256(small).hexdigest()
    blobs: dict[str, Callable[[], BinaryIO]] = {
        big_digest.hexdigest(): lambda: _Repeating(chunk, big_size),  # type: ignore[dict-item]
        small_digest: lambda: io.BytesIO(small),
    }
    entries = [
        ManifestEntry("directory", "huge.bin", EntryKind.FILE, big_size, big_digest.hexdigest()),
        ManifestEntry("directory", "after.txt", EntryKind.FILE, len(small), small_digest),
    ]
    target = tmp_path / "big.zip"
    write(target, entries, lambda digest: blobs[digest]())
    assert target.stat().st_size > 4 * 1024**3
    assert verify_local_copy(target).entries == entries
    with zipfile.ZipFile(target) as archive:
        assert archive.getinfo("directory/after.txt").header_offset > 4 * 1024**3
        assert archive.read("directory/after.txt") == small
    if shutil.which("unzip"):
        listing = subprocess.run(["unzip", "-l", str(target)], capture_output=True, check=True)
        assert str(big_size).encode() in listing.stdout


class _Repeating(io.RawIOBase):
    """`size` bytes made of `chunk` repeated, without holding them in memory."""

    def __init__(self, chunk: bytes, size: int) -> None:
        self._chunk, self._left = chunk, size

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._chunk[: min(len(self._chunk), self._left)]
        self._left -= len(data)
        return data


# ---- hostile archives: helpers -------------------------------------------------------------


def hostile(tmp_path: Path, corrupt: Callable[[Parts], None]) -> tuple[Path, ArchiveLimits]:
    """A valid copy with one thing corrupted by `corrupt`."""
    parts = take_apart(write_sample(tmp_path).path)
    corrupt(parts)
    return build(parts, tmp_path / "hostile.zip"), parts.limits


def assert_refused(path: Path, *words: str, limits: ArchiveLimits = ArchiveLimits(), cheap: bool = True) -> None:
    """Import refuses `path` with a message containing `words`; `cheap`: so does listing."""
    checks: list[Callable[..., Any]] = [verify_local_copy] + ([read_manifest] if cheap else [])
    for check in checks:
        with pytest.raises(InvalidArchive) as caught:
            check(path, limits)
        for word in words:
            assert word in caught.value.message, f"{word!r} not in {caught.value.message!r}"


# ---- hostile archives: not a ZIP -----------------------------------------------------------


def test_not_a_zip(tmp_path: Path) -> None:
    path = tmp_path / "copy.zip"
    path.write_text("this is a text file, not an archive")
    assert_refused(path, "not a ZIP")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "copy.zip"
    path.write_bytes(b"")
    assert_refused(path, "not a ZIP")


def test_truncated_zip(tmp_path: Path) -> None:
    data = write_sample(tmp_path).path.read_bytes()
    path = tmp_path / "cut.zip"
    path.write_bytes(data[: len(data) // 2])
    assert_refused(path, "truncated")


def test_empty_zip(tmp_path: Path) -> None:
    path = tmp_path / "copy.zip"
    zipfile.ZipFile(path, "w").close()
    assert_refused(path, "no manifest.json")


# ---- hostile archives: the manifest --------------------------------------------------------


def test_no_manifest(tmp_path: Path) -> None:
    path, _ = hostile(tmp_path, lambda p: setattr(p, "manifest_name", "settings/manifest.json"))
    assert_refused(path, "no manifest.json")


def test_manifest_not_first(tmp_path: Path) -> None:
    path, _ = hostile(tmp_path, lambda p: setattr(p, "manifest_last", True))
    assert_refused(path, "manifest.json is not the first member")


def test_manifest_not_json(tmp_path: Path) -> None:
    cut = b'{"format": "backups-local-copy",'
    path, _ = hostile(tmp_path, lambda p: setattr(p, "raw_manifest", cut))
    assert_refused(path, "manifest.json is not valid JSON")


def test_manifest_not_utf8(tmp_path: Path) -> None:
    def corrupt(parts: Parts) -> None:
        parts.raw_manifest = json.dumps(parts.manifest).encode("utf-16")

    path, _ = hostile(tmp_path, corrupt)
    assert_refused(path, "manifest.json is not UTF-8")


def test_manifest_with_duplicate_keys(tmp_path: Path) -> None:
    raw = b'{"format": "backups-local-copy", "format": "other"}'
    path, _ = hostile(tmp_path, lambda p: setattr(p, "raw_manifest", raw))
    assert_refused(path, "duplicate key 'format'")


def _set(*keys: str | int, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(manifest: dict[str, Any]) -> None:
        target: Any = manifest
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value

    return edit


def _delete(*keys: str | int) -> Callable[[dict[str, Any]], None]:
    def edit(manifest: dict[str, Any]) -> None:
        target: Any = manifest
        for key in keys[:-1]:
            target = target[key]
        del target[keys[-1]]

    return edit


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (_set("formatVersion", value=2), ["unsupported formatVersion 2"]),
        (_set("formatVersion", value="1"), ["unsupported formatVersion '1'"]),
        (_set("formatVersion", value=True), ["unsupported formatVersion True"]),
        (_delete("formatVersion"), ["missing the key 'formatVersion'"]),
        (_set("format", value="some-other-zip"), ["not a backups local copy"]),
        (_set("entries", value={"a": 1}), ["'entries' must be a list"]),
        (_set("entries", 0, value="settings/a.json"), ["entries[0] must be an object"]),
        (_set("entries", 0, "size", value="12"), ["entries[0].size must be a", "got '12'"]),
        (_set("entries", 0, "size", value=-1), ["negative size -1"]),
        (_set("entries", 0, "size", value=1.5), ["entries[0].size must be a non-negative integer"]),
        (_set("entries", 0, "sha256", value="xyz"), ["malformed sha256 'xyz'"]),
        (_set("entries", 0, "sha256", value="AB" * 32), ["malformed sha256"]),
        (_set("entries", 0, "kind", value="PIPE"), ["entries[0].kind 'PIPE'"]),
        (_set("entries", 0, "mode", value=0o100644), ["mode 0o100644"]),
        (_set("entries", 0, "mtime", value="yesterday"), ["mtime 'yesterday' is not an ISO 8601"]),
        (_delete("entries", 0, "path"), ["entries[0] is missing the key 'path'"]),
        (_set("entries", 3, "sha256", value="ab" * 32), ["is a DIRECTORY but has a sha256"]),
        (_delete("restorePoint"), ["missing the key 'restorePoint'"]),
        (_set("restorePoint", "createdAt", value="2026-03-04T05:06:07"), ["has no time zone"]),
        (_set("restorePoint", "origin", value="ALIEN"), ["restorePoint.origin 'ALIEN'"]),
        (_set("restorePoint", "sizeBytes", value=-5), ["restorePoint.sizeBytes must be"]),
        (_set("restorePoint", "label", value=None), ["restorePoint.label must be a string"]),
        (_set("restorePoint", "checksum", value="nope"), ["restorePoint.checksum 'nope'"]),
    ],
)
def test_manifest_with_wrong_types(tmp_path: Path, edit: Callable[[dict[str, Any]], None], words: list[str]) -> None:
    path, _ = hostile(tmp_path, lambda p: edit(p.manifest))
    assert_refused(path, "manifest.json", *words)


def test_manifest_too_large(tmp_path: Path) -> None:
    path = write_sample(tmp_path).path
    limits = ArchiveLimits(max_manifest_bytes=500)
    assert_refused(path, "manifest.json is", "more than the limit", limits=limits)


def test_manifest_nested_too_deeply(tmp_path: Path) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    path, _ = hostile(tmp_path, lambda p: setattr(p, "raw_manifest", deep))
    assert_refused(path, "manifest.json is nested too deeply")


# ---- hostile archives: paths ---------------------------------------------------------------

UNSAFE_PATHS = [
    ("../etc/passwd", "escapes its folder"),
    ("a/../../b", "escapes its folder"),
    ("/etc/passwd", "absolute"),
    ("C:/Windows/x", "drive letter"),
    ("a\\..\\b", "backslash"),
    ("a//b", "empty path segment"),
    ("a/", "empty path segment"),
    ("./a", "'.' segment"),
    ("a\x00b", "NUL byte"),
    ("", "empty path"),
]


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("settings/../etc/passwd", "escapes its folder"),
        ("settings/a/../../b", "escapes its folder"),
        ("../x", "escapes its folder"),
        ("/etc/passwd", "absolute"),
        ("C:/Windows/x", "drive letter"),
        ("settings\\..\\x", "backslash"),
        ("settings//x", "empty path segment"),
        ("settings/./x", "'.' segment"),
        ("settings.json", "not name an item inside a source folder"),
        ("settings/", "not name an item inside a source folder"),
    ],
)
def test_unsafe_member_name(tmp_path: Path, name: str, problem: str) -> None:
    path, _ = hostile(tmp_path, lambda p: p.members.append(Member(name, b"x")))
    assert_refused(path, f"member {name!r}", problem)


def test_nul_byte_in_raw_member_name(tmp_path: Path) -> None:
    # zipfile's own writer cuts names at NUL, so put one in the bytes afterwards.
    path, _ = hostile(tmp_path, lambda p: p.members.append(Member("settings/evilXname", b"x")))
    data = path.read_bytes()
    path.write_bytes(data.replace(b"settings/evilXname", b"settings/evil\x00name"))
    assert_refused(path, "NUL byte")


@pytest.mark.parametrize(("bad", "problem"), UNSAFE_PATHS)
def test_unsafe_manifest_path(tmp_path: Path, bad: str, problem: str) -> None:
    path, _ = hostile(tmp_path, lambda p: p.entry(JSON_MEMBER).update(path=bad))
    assert_refused(path, "manifest.json: entry", problem)


@pytest.mark.parametrize("source", ["Settings", "set tings", "a" * 65, "é", "settings\n"])
def test_unsafe_source_name_in_manifest(tmp_path: Path, source: str) -> None:
    path, _ = hostile(tmp_path, lambda p: p.entry(JSON_MEMBER).update(source=source))
    assert_refused(path, "unsafe source name")


def test_unsafe_source_name_in_member(tmp_path: Path) -> None:
    path, _ = hostile(tmp_path, lambda p: p.members.append(Member("Settings/x.json", b"{}")))
    assert_refused(path, "member 'Settings/x.json'", "unsafe source name")


def test_file_below_a_symlink_entry(tmp_path: Path) -> None:
    # Restoring this would write through the link, wherever it points.
    path, _ = hostile(tmp_path, lambda p: p.add_file("directory/scripts/current/payload", b"x"))
    assert_refused(path, "inside", "SYMLINK")


# ---- hostile archives: members -------------------------------------------------------------


def test_symlink_member(tmp_path: Path) -> None:
    link = Member("directory/scripts/current", b"/etc", external_attr=(stat.S_IFLNK | 0o777) << 16)
    path, _ = hostile(tmp_path, lambda p: p.members.__setitem__(_index(p, link.name), link))
    assert_refused(path, "member 'directory/scripts/current' is a symbolic link")


def test_special_file_member(tmp_path: Path) -> None:
    fifo = Member("directory/empty.txt", b"", external_attr=(stat.S_IFIFO | 0o644) << 16)
    path, _ = hostile(tmp_path, lambda p: p.members.__setitem__(_index(p, fifo.name), fifo))
    assert_refused(path, "special file")


def _index(parts: Parts, name: str) -> int:
    return next(i for i, m in enumerate(parts.members) if m.name == name)


def test_duplicate_member_names(tmp_path: Path) -> None:
    path, _ = hostile(tmp_path, lambda p: p.members.append(p.members[0]))
    assert_refused(path, "duplicate member 'settings/modules/network.json'")


def test_file_and_directory_member_for_one_path(tmp_path: Path) -> None:
    path, _ = hostile(tmp_path, lambda p: p.members.append(Member("directory/random.bin/", b"")))
    assert_refused(path, "member 'directory/random.bin/' duplicates 'directory/random.bin'")


def test_duplicate_manifest_entries(tmp_path: Path) -> None:
    path, _ = hostile(tmp_path, lambda p: p.manifest["entries"].append(p.manifest["entries"][0]))
    assert_refused(path, "lists 'settings/modules/network.json' twice")


def test_member_not_in_manifest(tmp_path: Path) -> None:
    path, _ = hostile(tmp_path, lambda p: p.members.append(Member("settings/extra.json", b"{}")))
    assert_refused(path, "member 'settings/extra.json' is not listed in manifest.json")


def test_manifest_entry_without_member(tmp_path: Path) -> None:
    path, _ = hostile(tmp_path, lambda p: p.members.pop(_index(p, "directory/photo.jpg")))
    assert_refused(path, "manifest entry 'directory/photo.jpg' has no member")


def test_directory_entry_stored_as_file(tmp_path: Path) -> None:
    def corrupt(parts: Parts) -> None:
        parts.members[_index(parts, "directory/scripts/")] = Member("directory/scripts", b"")

    path, _ = hostile(tmp_path, corrupt)
    assert_refused(path, "does not match its manifest entry's kind DIRECTORY")


def test_size_mismatch(tmp_path: Path) -> None:
    path, _ = hostile(tmp_path, lambda p: p.entry("directory/random.bin").update(size=200_001))
    assert_refused(path, "is 200000 bytes but its manifest entry says 200001")


def test_checksum_mismatch_is_found_by_full_verification(tmp_path: Path) -> None:
    def corrupt(parts: Parts) -> None:
        member = parts.members[_index(parts, "directory/random.bin")]
        member.data = bytes(len(member.data))  # same size, other bytes

    path, _ = hostile(tmp_path, corrupt)
    read_manifest(path)  # listing does not hash content
    assert_refused(path, "member 'directory/random.bin' does not match its SHA-256", cheap=False)


def test_declared_size_that_lies_is_not_trusted(tmp_path: Path) -> None:
    # Member and manifest both claim 100 bytes; the compressed data holds 800.
    path, _ = hostile(tmp_path, lambda p: p.add_file("settings/lie.json", b"{}" * 400))
    first_100 = hashlib.sha256(b"{}" * 50).hexdigest()
    parts = take_apart(path)
    parts.entry("settings/lie.json").update(size=100, sha256=first_100)
    build(parts, path)
    patch_header(path, "settings/lie.json", "size", 100)
    assert_refused(path, "member 'settings/lie.json' is damaged", cheap=False)


def test_member_stream_stops_past_the_manifest_size(tmp_path: Path) -> None:
    # The stream trusts the entry it was given, not the archive's own size fields.
    sample = write_sample(tmp_path)
    with open_local_copy(sample.path) as copy:
        entry = next(e for e in copy.manifest.entries if e.path == "random.bin")
        with copy.open_member(replace(entry, size=10)) as stream, pytest.raises(InvalidArchive) as caught:
            stream.read()
    assert "holds more than the 10 bytes" in caught.value.message


def test_encrypted_member(tmp_path: Path) -> None:
    path = write_sample(tmp_path).path
    patch_header(path, "directory/random.bin", "flags", 0x1)
    assert_refused(path, "member 'directory/random.bin' is encrypted")


def test_overlapping_members(tmp_path: Path) -> None:
    # Many directory records pointing at one local file is the classic overlap bomb.
    path = write_sample(tmp_path).path
    with zipfile.ZipFile(path) as archive:
        shared = archive.getinfo("directory/random.bin").header_offset
    patch_header(path, "directory/photo.jpg", "offset", shared)
    assert_refused(path, "overlaps")


def test_unsupported_compression_method(tmp_path: Path) -> None:
    def corrupt(parts: Parts) -> None:
        parts.members[_index(parts, "directory/random.bin")].compress_type = zipfile.ZIP_BZIP2

    path, _ = hostile(tmp_path, corrupt)
    assert_refused(path, "compression method 12")


# ---- hostile archives: bombs and limits ----------------------------------------------------


def test_zip_bomb_ratio(tmp_path: Path) -> None:
    path, _ = hostile(tmp_path, lambda p: p.add_file("directory/bomb.bin", bytes(4 * 1024 * 1024)))
    assert_refused(path, "member 'directory/bomb.bin' would expand", "zip bomb")


def test_small_members_may_compress_well(tmp_path: Path) -> None:
    path, _ = hostile(tmp_path, lambda p: p.add_file("directory/zeros.bin", bytes(512 * 1024)))
    verify_local_copy(path)


def test_total_size_limit(tmp_path: Path) -> None:
    path = write_sample(tmp_path).path
    assert_refused(path, "total size limit", limits=ArchiveLimits(max_total_size=100_000))


def test_entry_size_limit(tmp_path: Path) -> None:
    path = write_sample(tmp_path).path
    limits = ArchiveLimits(max_entry_size=100_000)
    assert_refused(path, "'directory/random.bin'", "per entry", limits=limits)


def test_too_many_entries(tmp_path: Path) -> None:
    path = write_sample(tmp_path).path
    assert_refused(path, "more than the limit of 3", limits=ArchiveLimits(max_entries=3))


def test_cancelled_verification(tmp_path: Path) -> None:
    path = write_sample(tmp_path).path
    with pytest.raises(CopyCancelled):
        verify_local_copy(path, should_stop=lambda: True)


# ---- large members and whole reads ---------------------------------------------------------


def _large_entries(store: ContentStore) -> tuple[list[ManifestEntry], dict[str, bytes]]:
    # Above CHUNK_SIZE, so streamed in chunks: text that deflates, noise that is stored, and
    # small members on both sides of them.
    text = b"".join(b"%08d|event.%d|some words that repeat\n" % (n, n % 97) for n in range(100_000))
    content = {
        "directory/before.json": NETWORK_JSON,
        "directory/events.log": text,
        "directory/video.mp4": random.Random(5).randbytes(2 * 1024 * 1024 + 17),
        "directory/after.txt": b"after the large ones\n" * 10,
    }
    entries = []
    for name, data in content.items():
        digest, size, _ = store.put_bytes(data)
        entries.append(ManifestEntry("directory", name.split("/", 1)[1], EntryKind.FILE, size, digest, 0o644, MTIME))
    return entries, content


def test_large_members_are_chunked_checksummed_and_read_back(tmp_path: Path) -> None:
    store = ContentStore(tmp_path / "blobs")
    entries, content = _large_entries(store)
    target = tmp_path / "copy.zip"
    write(target, entries, store.open, read_blob=store.read)
    with zipfile.ZipFile(target) as archive:
        assert archive.testzip() is None  # the CRC-32s combined from the chunks' are right
        for name, data in content.items():
            assert archive.read(name) == data
        assert archive.getinfo("directory/events.log").compress_type == zipfile.ZIP_DEFLATED
        assert archive.getinfo("directory/events.log").compress_size < len(content["directory/events.log"]) / 4
        assert archive.getinfo("directory/video.mp4").compress_type == zipfile.ZIP_STORED
    assert verify_local_copy(target).entries == entries
    if shutil.which("unzip"):
        subprocess.run(["unzip", "-tq", str(target)], capture_output=True, check=True)


@pytest.mark.parametrize("damaged", ["directory/events.log", "directory/video.mp4", "directory/after.txt"])
def test_a_damaged_blob_fails_the_copy_whether_read_whole_or_streamed(tmp_path: Path, damaged: str) -> None:
    store = ContentStore(tmp_path / "blobs")
    entries, content = _large_entries(store)
    entry = next(e for e in entries if member_name(e) == damaged)
    blob = store.path_of(entry.sha256 or "")
    spoiled = bytearray(blob.read_bytes())
    spoiled[len(spoiled) // 2] ^= 1  # one bit, same size
    blob.write_bytes(bytes(spoiled))
    folder = tmp_path / "copies"
    folder.mkdir()
    with pytest.raises(ContentMismatch, match="other bytes of the same size"):
        write(folder / "copy.zip", entries, store.open, read_blob=store.read)
    assert os.listdir(folder) == []
