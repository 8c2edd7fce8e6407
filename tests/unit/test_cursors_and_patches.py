from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest

from server.api.scalars import _parse_byte_count
from server.model.errors import InvalidInput
from server.services.settings_store import merge_patch
from server.storage.db.cursors import decode_cursor, encode_cursor
from server.storage.db.items_repo import decode_item_cursor, encode_item_cursor


def test_cursor_round_trip() -> None:
    moment = datetime(2026, 11, 26, 10, 0, 0, 123456, tzinfo=UTC)
    assert decode_cursor(encode_cursor(moment, "rp_abc")) == (moment, "rp_abc")


@pytest.mark.parametrize("bad", ["", "abc", "!!!", "WyJub3QgYSBkYXRlIiwgInJwIl0", "WzEsMl0"])
def test_foreign_cursors_are_invalid_input(bad: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        decode_cursor(bad)
    assert raised.value.field == "after"


@pytest.mark.parametrize("path", ["a/b c/Grüße.txt", "", "x/y/" + "z" * 300, "[1]"])
def test_item_cursor_round_trip(path: str) -> None:
    assert decode_item_cursor(encode_item_cursor("site", path)) == ("site", path)


def test_an_item_cursor_of_the_earlier_json_form_is_still_read() -> None:
    earlier = base64.urlsafe_b64encode(json.dumps(["item", "site", "a/b"]).encode()).decode().rstrip("=")
    assert decode_item_cursor(earlier) == ("site", "a/b")


@pytest.mark.parametrize(
    "raw", [b"nope", b"item\0site", b"item\0a\0b\0c", b"other\0site\0a", b'["item", "site"]', b"\xff\xfe"]
)
def test_foreign_item_cursors_are_invalid_input(raw: bytes) -> None:
    with pytest.raises(InvalidInput) as raised:
        decode_item_cursor(base64.urlsafe_b64encode(raw).decode())
    assert raised.value.field == "after"


def test_merge_patch_follows_rfc_7386() -> None:
    target = {"a": "b", "c": {"d": "e", "f": "g"}, "keep": [1, 2]}
    patch = {"a": "z", "c": {"f": None}, "new": {"x": 1}}
    assert merge_patch(target, patch) == {"a": "z", "c": {"d": "e"}, "keep": [1, 2], "new": {"x": 1}}
    assert merge_patch({"a": [1]}, {"a": [2]}) == {"a": [2]}  # arrays are replaced, not merged
    assert target["c"] == {"d": "e", "f": "g"}  # the input is not modified


@pytest.mark.parametrize("value", [0, 2**31, 5 * 2**30, "4294967296", 2**53 - 1])
def test_byte_count_accepts_large_values(value: int | str) -> None:
    assert _parse_byte_count(value) == int(value)


@pytest.mark.parametrize("value", [-1, 2**53, True, 1.5, "12a", None])
def test_byte_count_rejects_bad_values(value: object) -> None:
    with pytest.raises(ValueError):
        _parse_byte_count(value)
