"""Remote copy ids: one per (location, file name), unicode and spaces included; nothing else parses."""

from __future__ import annotations

import pytest

from server.storage.locations.store import parse_remote_copy_id, remote_copy_id


@pytest.mark.parametrize("name", ["a.zip", "Sauvegarde d'été 2026 — salle 1.zip", "x-2.zip", "日本.ZIP"])
def test_round_trip(name: str) -> None:
    copy_id = remote_copy_id("offsite", name)
    assert copy_id.startswith("rc_") and parse_remote_copy_id(copy_id) == ("offsite", name)


@pytest.mark.parametrize(
    "bad",
    [
        "rc_",
        "rc_!!!",
        "lc_YS56aXA",
        remote_copy_id("offsite", "a.zip") + "\n",
        remote_copy_id("offsite", "a.zip") + "=",
        remote_copy_id("offsite", "../a.zip"),
        remote_copy_id("offsite", ".hidden.zip"),
        remote_copy_id("offsite", "notes.txt"),
        remote_copy_id("offsite", "sub/a.zip"),
    ],
)
def test_others_do_not_parse(bad: str) -> None:
    assert parse_remote_copy_id(bad) is None
