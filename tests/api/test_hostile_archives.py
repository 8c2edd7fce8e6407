"""Every class of hostile archive is refused with INVALID_ARCHIVE, and nothing is written.

Each case starts from a real copy exported by the server, breaks one thing, drops the file
into the local copies folder (as a person copying files in by hand would), and imports it.
The refusal comes either at once as a userError (the listing already saw the problem) or as
the import operation FAILED with error code INVALID_ARCHIVE (found while reading content).
"""

from __future__ import annotations

import os
import stat
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.api import create_and_wait, execute, wait_for_operation
from tests.support.archives import Member, Parts, build, patch_header, take_apart
from tests.support.blobs import stored_blobs
from tests.support.in_process import InProcessServer
from tests.support.local_copies import exported_copy
from tests.support.server_process import ServerProcess

# Its tests share a module-scoped server: one xdist worker runs them all, so it is made once.
pytestmark = pytest.mark.xdist_group("hostile-archives")

LIMITS = {
    "BACKUPS_IMPORT_MAX_ENTRIES": "40",
    "BACKUPS_IMPORT_MAX_TOTAL_BYTES": str(8 * 1024 * 1024),
    "BACKUPS_IMPORT_MAX_MANIFEST_BYTES": str(64 * 1024),
}
FIRST = "settings/audio.json"


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Path]]:
    """A server with small import limits, and a valid copy it exported."""
    import asyncio

    proc = InProcessServer(data_dir=tmp_path_factory.mktemp("hostile") / "data", env_overrides=LIMITS).start()

    async def prepare() -> Path:
        final = await create_and_wait(proc, "the original")
        copy = await exported_copy(proc, final["restorePoint"]["id"], "fileName")
        return proc.data_dir / "local-copies" / copy["fileName"]

    valid = asyncio.run(prepare())
    yield proc, valid
    proc.close()


def edit(change: Callable[[Parts], None]) -> Callable[[Path, Path], None]:
    """A case that takes the copy apart, changes one thing, and zips it again."""

    def make(valid: Path, target: Path) -> None:
        parts = take_apart(valid)
        change(parts)
        build(parts, target)

    return make


def rename(old: str, new: str) -> Callable[[Parts], None]:
    """Give a member a hostile name, in the ZIP and in the manifest alike."""

    def change(parts: Parts) -> None:
        entry = parts.entry(old)
        source, path = new.split("/", 1) if "/" in new and not new.startswith("/") else ("settings", new)
        entry["source"], entry["path"] = source, path
        next(m for m in parts.members if m.name == old).name = new

    return change


def patched(field: str, value: int) -> Callable[[Path, Path], None]:
    def make(valid: Path, target: Path) -> None:
        target.write_bytes(valid.read_bytes())
        patch_header(target, FIRST, field, value)

    return make


def add_many(parts: Parts) -> None:
    for index in range(50):
        parts.add_file(f"settings/extra-{index}.json", b"{}")


def symlink_member(parts: Parts) -> None:
    next(m for m in parts.members if m.name == FIRST).external_attr = (stat.S_IFLNK | 0o777) << 16


def duplicate(parts: Parts) -> None:
    parts.members.append(Member(FIRST, next(m for m in parts.members if m.name == FIRST).data))


def unlisted(parts: Parts) -> None:
    parts.members.append(Member("settings/smuggled.json", b"{}"))


def missing(parts: Parts) -> None:
    parts.members = [m for m in parts.members if m.name != FIRST]


def wrong_size(parts: Parts) -> None:
    parts.entry(FIRST)["size"] += 1


def wrong_content(parts: Parts) -> None:
    member = next(m for m in parts.members if m.name == FIRST)
    member.data = member.data.replace(b"Hall", b"Hack") if b"Hall" in member.data else member.data[:-2] + b" }"


def truncate(valid: Path, target: Path) -> None:
    data = valid.read_bytes()
    target.write_bytes(data[: len(data) // 2])


def not_a_zip(valid: Path, target: Path) -> None:
    target.write_bytes(b"%PDF-1.7 this is a document, not a local copy\n" * 10)


def set_manifest(**changes: object) -> Callable[[Parts], None]:
    def change(parts: Parts) -> None:
        parts.manifest.update(changes)

    return change


def raw_manifest(data: bytes) -> Callable[[Parts], None]:
    def change(parts: Parts) -> None:
        parts.raw_manifest = data

    return change


def wrong_type(parts: Parts) -> None:
    parts.entry(FIRST)["size"] = "372"


def point_id(suffix: str) -> Callable[[Parts], None]:
    """Give the restore point an id that is ours but for `suffix` (not yet held by the server)."""

    def change(parts: Parts) -> None:
        parts.manifest["restorePoint"]["id"] = "rp_" + "0" * 24 + suffix

    return change


def huge_manifest(parts: Parts) -> None:
    parts.manifest["restorePoint"]["note"] = "x" * (100 * 1024)


CASES: dict[str, tuple[Callable[[Path, Path], None], str]] = {
    "traversal": (edit(rename(FIRST, "settings/../../etc/passwd")), "escapes its folder"),
    "absolute path": (edit(rename(FIRST, "/etc/passwd")), "absolute"),
    "drive letter": (edit(rename(FIRST, "settings/C:/Windows/win.ini")), "drive letter"),
    "backslash": (edit(rename(FIRST, "settings/..\\..\\evil.json")), "backslash"),
    "symlink entry": (edit(symlink_member), "symbolic link"),
    "duplicate names": (edit(duplicate), "duplicate member"),
    "member missing from manifest": (edit(unlisted), "is not listed in manifest.json"),
    "manifest entry absent in zip": (edit(missing), "has no member"),
    "size mismatch": (edit(wrong_size), "its manifest entry says"),
    "checksum mismatch": (edit(wrong_content), "SHA-256"),
    "truncated": (truncate, "not a ZIP"),
    "not a zip": (not_a_zip, "not a ZIP"),
    "encrypted entry": (patched("flags", 0x1), "encrypted"),
    "zip bomb ratio": (edit(lambda p: p.add_file("settings/bomb.bin", bytes(4 * 1024 * 1024))), "zip bomb"),
    "zip bomb total size": (
        edit(lambda p: p.add_file("settings/big.bin", os.urandom(9 * 1024 * 1024), compress_type=zipfile.ZIP_STORED)),
        "total size limit",
    ),
    "too many entries": (edit(add_many), "more than the limit of 40"),
    "unknown format version": (edit(set_manifest(formatVersion=2)), "unsupported formatVersion 2"),
    "manifest not json": (edit(raw_manifest(b"{this is not json")), "not valid JSON"),
    "manifest wrong types": (edit(wrong_type), "size"),
    "manifest too large": (edit(huge_manifest), "more than the limit"),
    # `$` in `^rp_...$` matched before a final newline: this imported a restore point nobody could read or delete.
    "id with a trailing newline": (edit(point_id("\n")), "is not an id"),
    "id with a control character": (edit(point_id("\x1b[2J")), "is not an id"),
    "id with a space": (edit(point_id(" x")), "is not an id"),
}


def state_of(proc: ServerProcess) -> tuple[set[str], set[str]]:
    blobs = stored_blobs(proc)
    temps = set(os.listdir(proc.data_dir / "blobs" / "tmp"))
    return blobs, temps


@pytest.mark.parametrize("case", list(CASES))
async def test_hostile_archive_is_refused_and_nothing_written(hostile_server, tmp_path: Path, case: str) -> None:
    proc, valid = hostile_server
    make, words = CASES[case]
    target = proc.data_dir / "local-copies" / f"hostile-{case.replace(' ', '-')}.zip"
    make(valid, target)
    points_before = (await execute(proc, "{ restorePoints { totalCount } }"))["restorePoints"]["totalCount"]
    disk_before = state_of(proc)

    listed = {c["fileName"]: c for c in (await execute(proc, "{ localCopies { id fileName problem } }"))["localCopies"]}
    copy = listed[target.name]
    data = await execute(
        proc,
        "mutation($id: ID!) { importLocalCopy(localCopyId: $id) { operation { id } userErrors { code message } } }",
        id=copy["id"],
    )
    payload = data["importLocalCopy"]
    if payload["userErrors"]:
        error = payload["userErrors"][0]
        assert error["code"] == "INVALID_ARCHIVE"
        message = error["message"]
        assert copy["problem"] and copy["problem"] in message
    else:
        final = await wait_for_operation(proc, payload["operation"]["id"])
        assert final["status"] == "FAILED"
        assert final["error"]["code"] == "INVALID_ARCHIVE"
        message = final["error"]["message"]
    assert words in message, message
    assert target.name in message

    assert (await execute(proc, "{ restorePoints { totalCount } }"))["restorePoints"]["totalCount"] == points_before
    assert state_of(proc) == disk_before
    target.unlink()
