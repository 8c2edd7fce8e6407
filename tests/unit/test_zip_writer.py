"""ZipWriter: the ZIPs it writes are read back by zipfile and by Info-ZIP unzip."""

from __future__ import annotations

import random
import shutil
import stat
import struct
import subprocess
import zipfile
from pathlib import Path

from server.storage.local_copy.parallel_deflate import compress_chunk, crc32, next_window
from server.storage.local_copy.zip_writer import DEFLATED, STORED, ZipWriter

WHEN = (2026, 3, 4, 5, 6, 8)
REGULAR = (stat.S_IFREG | 0o640) << 16
DIRECTORY = (stat.S_IFDIR | 0o755) << 16 | 0x10
TEXT = b"".join(b"line %d of a config file, some words repeat\n" % n for n in range(40_000))
NOISE = random.Random(3).randbytes(300_000)


def write_zip(path: Path, fill) -> None:  # type: ignore[no-untyped-def]
    with path.open("wb") as out:
        archive = ZipWriter(out)
        fill(archive)
        archive.close()


def add(archive: ZipWriter, name: str, data: bytes, method: int) -> None:
    payload = compress_chunk(data, last=True) if method == DEFLATED else data
    archive.add(
        name, date_time=WHEN, external_attr=REGULAR, method=method, size=len(data), crc=crc32(data), payload=payload
    )


def unzip_tests(path: Path) -> None:
    if shutil.which("unzip"):
        subprocess.run(["unzip", "-tq", str(path)], capture_output=True, check=True)


def test_whole_members_read_back_with_their_names_times_and_attributes(tmp_path: Path) -> None:
    path = tmp_path / "a.zip"

    def fill(archive: ZipWriter) -> None:
        add(archive, "settings/text.txt", TEXT, DEFLATED)
        add(archive, "directory/noise.bin", NOISE, STORED)
        add(archive, "directory/empty", b"", STORED)
        archive.add(
            "directory/sub/", date_time=WHEN, external_attr=DIRECTORY, method=STORED, size=0, crc=0, payload=b""
        )
        add(archive, "directory/café ☃.yaml", "clé: valeur\n".encode() * 9, DEFLATED)

    write_zip(path, fill)
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None  # every CRC-32 matches
        infos = archive.infolist()
        assert [i.filename for i in infos] == [
            "settings/text.txt",
            "directory/noise.bin",
            "directory/empty",
            "directory/sub/",
            "directory/café ☃.yaml",
        ]
        assert archive.read("settings/text.txt") == TEXT
        assert archive.read("directory/noise.bin") == NOISE
        assert [i.compress_type for i in infos] == [zipfile.ZIP_DEFLATED, 0, 0, 0, zipfile.ZIP_DEFLATED]
        assert infos[0].compress_size < len(TEXT) / 5
        assert infos[0].date_time == WHEN and infos[0].external_attr == REGULAR
        assert infos[3].is_dir() and infos[3].external_attr == DIRECTORY
        assert infos[4].flag_bits & 0x800 and not infos[0].flag_bits & 0x800  # UTF-8 only where needed
    unzip_tests(path)


def test_a_member_written_in_parts_gets_its_crc_and_sizes_in_both_headers(tmp_path: Path) -> None:
    path = tmp_path / "parts.zip"
    parts = [TEXT[i : i + 100_000] for i in range(0, len(TEXT), 100_000)]

    def fill(archive: ZipWriter) -> None:
        add(archive, "first.txt", b"before", DEFLATED)
        archive.begin("big.txt", date_time=WHEN, external_attr=REGULAR, method=DEFLATED, size=len(TEXT))
        window, crc = b"", 0
        for n, part in enumerate(parts):
            archive.write(compress_chunk(part, window=window, last=n == len(parts) - 1))
            window, crc = next_window(window, part), crc32(part, crc)
        archive.finish(crc)
        add(archive, "after.txt", b"after", STORED)

    write_zip(path, fill)
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
        assert archive.read("big.txt") == TEXT and archive.read("after.txt") == b"after"
        info = archive.getinfo("big.txt")
    raw = path.read_bytes()
    # The local header was rewritten in place: the same CRC-32 and sizes as the central one.
    crc, packed, size = struct.unpack_from("<3L", raw, info.header_offset + 14)
    assert (crc, packed, size) == (info.CRC, info.compress_size, len(TEXT))
    unzip_tests(path)


def test_more_than_65535_members_get_zip64_end_records(tmp_path: Path) -> None:
    path = tmp_path / "many.zip"
    count = 70_000

    def fill(archive: ZipWriter) -> None:
        for n in range(count):
            add(archive, f"d/{n}", b"%d" % n, STORED)

    write_zip(path, fill)
    assert b"PK\x06\x06" in path.read_bytes()[-200:]
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        assert len(names) == count and archive.read("d/69999") == b"69999"
    unzip_tests(path)
