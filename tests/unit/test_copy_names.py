"""The one rule for a copy's file name as this server writes it (server/model/names.py)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from server.model.names import COPY_NAME_MAX_BYTES, safe_copy_name
from server.storage.durability import TEMP_SUFFIX, atomic_write, is_temp_name, temp_prefix


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("20261206-101500_nightly_0a1b2c3d.zip", "20261206-101500_nightly_0a1b2c3d.zip"),  # as it is
        ("Salle des fêtes.zip.age", "Salle des fêtes.zip.age"),
        ("two\nlines.zip", "two_lines.zip"),
        ("nul\0and\x7fdel.zip", "nul_and_del.zip"),
        ("bidi\u202egnp.zip", "bidi_gnp.zip"),
        ("para\u2029graph.zip", "para_graph.zip"),
        ("bad\udcffbyte.zip", "bad_byte.zip"),  # os.fsdecode's stand-in for a byte that is no UTF-8
        ("a/b\\c.ZIP", "a_b_c.ZIP"),
        (".hidden.zip", "_hidden.zip"),
        ("\n.zip", "_.zip"),
        ("L" * 250 + ".zip", "L" * 196 + ".zip"),
        ("x" * 250 + ".zip.age", "x" * 192 + ".zip.age"),
        ("é" * 125 + ".zip", "é" * 98 + ".zip"),
        ("€" * 100 + ".zip", "€" * 65 + ".zip"),  # 3 bytes each: never half a character
    ],
)
def test_safe_copy_name(name: str, safe: str) -> None:
    assert safe_copy_name(name) == safe
    assert len(safe.encode()) <= COPY_NAME_MAX_BYTES
    assert safe_copy_name(safe) == safe  # applying it twice changes nothing


def test_a_temp_file_fits_beside_the_longest_name(tmp_path: Path) -> None:
    longest = "n" * 251 + ".zip"  # 255 bytes: as long as a file name may be
    with atomic_write(tmp_path / longest) as pending:
        pending.file.write(b"whole")
        assert is_temp_name(pending.temp.name) and len(os.fsencode(pending.temp.name)) <= 255
    assert (tmp_path / longest).read_bytes() == b"whole"
    fd, name = tempfile.mkstemp(dir=tmp_path, prefix=temp_prefix(longest), suffix=TEMP_SUFFIX)
    os.close(fd)
    assert is_temp_name(Path(name).name)
