"""The two digests of a manifest: the checksum (content) and the id it is stored under."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

from server.model.manifests import manifest_checksum, manifest_digests, manifest_id
from server.model.records import EntryKind, ManifestEntry

WHEN = datetime(2026, 3, 4, 5, 6, 7, 891011, UTC)
ENTRIES = [
    ManifestEntry("site", "conf", EntryKind.DIRECTORY, 0, None, 0o755, WHEN),
    ManifestEntry("site", "conf/a.yaml", EntryKind.FILE, 4, "a" * 64, 0o644, WHEN),
    ManifestEntry("settings", "audio.json", EntryKind.FILE, 2, "b" * 64, 0o600, None),
]


def test_digests_in_one_pass_equal_each_on_its_own() -> None:
    assert manifest_digests(ENTRIES) == (manifest_checksum(ENTRIES), manifest_id(ENTRIES))


def test_the_id_covers_mtimes_and_the_checksum_does_not() -> None:
    touched = [ENTRIES[0], replace(ENTRIES[1], mtime=WHEN + timedelta(microseconds=1)), ENTRIES[2]]
    assert manifest_checksum(touched) == manifest_checksum(ENTRIES)
    assert manifest_id(touched) != manifest_id(ENTRIES)


def test_the_id_covers_every_field_and_the_order() -> None:
    changes = [
        replace(ENTRIES[1], source="other"),
        replace(ENTRIES[1], path="conf/b.yaml"),
        replace(ENTRIES[1], size=5),
        replace(ENTRIES[1], sha256="c" * 64),
        replace(ENTRIES[1], mode=0o600),
        replace(ENTRIES[1], mtime=None),
        replace(ENTRIES[1], kind=EntryKind.SYMLINK),
    ]
    ids = {manifest_id([ENTRIES[0], changed, ENTRIES[2]]) for changed in changes}
    assert len(ids) == len(changes) and manifest_id(ENTRIES) not in ids
    assert manifest_id(list(reversed(ENTRIES))) != manifest_id(ENTRIES)


def test_the_same_moment_in_another_zone_gives_the_same_id() -> None:
    """What the database hands back (UTC) names the manifest as the entries written did."""
    elsewhere = WHEN.astimezone(timezone(timedelta(hours=2)))
    moved = [ENTRIES[0], replace(ENTRIES[1], mtime=elsewhere), ENTRIES[2]]
    assert manifest_id(moved) == manifest_id(ENTRIES)
