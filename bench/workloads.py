"""The benchmark workloads, generated deterministically from a seed into bench/work/.

- `small_config()`: a NeuroomNet-like installation of a few MB, as settings modules (the
  seeded module names, grown to realistic sizes) and the same bytes as a folder of files.
- `large_tree()`: ~1 GiB: about 24,000 JSON config files of 2-100 KB under a realistic
  folder layout, plus three 256 MiB binaries (two incompressible media/firmware images and
  one half-compressible database image).

Both are cached: a stamp file records the parameters, and a matching stamp means the tree
on disk is reused, so only the first `make bench` pays for generation.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from server.sources.settings.documents import module_document_bytes

WORK = Path(__file__).resolve().parent / "work"
SEED = 7
KiB = 1024
MiB = 1024 * KiB

JSON_FILES = 24_000
JSON_MIN, JSON_MAX, JSON_MEAN_EXTRA = 2 * KiB, 100 * KiB, 9 * KiB
BINARY_SIZE = 256 * MiB
GENERATOR_VERSION = 3

_AREAS = ["displays", "audio", "lighting", "schedules", "network", "users", "shows", "devices"]
_MODELS = ["Epson EB-PU2010", "LG 55UH5F", "Biamp TesiraFORTE", "Crestron CP4", "Barco G62"]
_WORDS = [
    "hall",
    "foyer",
    "stage",
    "lobby",
    "studio",
    "gallery",
    "cinema",
    "entrance",
    "cafe",
    "office",
    "backstage",
    "roof",
]


@dataclass(frozen=True)
class Tree:
    root: Path
    files: int
    size: int


def _device(rng: random.Random, index: int) -> dict[str, Any]:
    room = rng.choice(_WORDS)
    return {
        "id": f"{room}-{index:05d}",
        "model": rng.choice(_MODELS),
        "host": f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
        "port": rng.choice([23, 80, 443, 4352, 5000]),
        "enabled": rng.random() > 0.1,
        "volume": round(rng.uniform(-60, 0), 1),
        "input": rng.choice(["HDMI1", "HDMI2", "SDI", "DP", "NDI"]),
        "tags": rng.sample(_WORDS, 3),
        "schedule": {"on": f"{rng.randrange(6, 10):02d}:00", "off": f"{rng.randrange(17, 23):02d}:30"},
        "notes": " ".join(rng.choice(_WORDS) for _ in range(rng.randrange(4, 16))),
    }


def small_config() -> dict[str, dict[str, Any]]:
    """The settings modules of a small installation, about 3 MB as documents."""
    rng = random.Random(SEED)
    modules: dict[str, dict[str, Any]] = {}
    for name in ["setup", "displays", "audio", "schedules", "network", "lighting", "users"]:
        count = rng.randrange(900, 1100)
        modules[name] = {"devices": [_device(rng, i) for i in range(count)], "module": name}
    return modules


def small_config_tree() -> Tree:
    """The small config as the settings source renders it: one `<module>.json` per module."""
    root = WORK / "small" / "settings"
    modules = small_config()
    stamp = WORK / "small.stamp"
    expected = f"{GENERATOR_VERSION}:{SEED}:{len(modules)}"
    if not (stamp.exists() and stamp.read_text() == expected and root.is_dir()):
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        for name, settings in modules.items():
            (root / f"{name}.json").write_bytes(module_document_bytes(settings))
        stamp.write_text(expected)
    return _measure(root)


PAGE = 4 * KiB


def _page(rng: random.Random, records: list[bytes]) -> bytes:
    used = b"".join(rng.choices(records, k=rng.randrange(16, 28)))[: PAGE - 512]
    return used + rng.randbytes(64) + bytes(PAGE - 64 - len(used))


def _binary(path: Path, seed: int, compressible: bool) -> None:
    rng = random.Random(seed)
    # Records: an id, a timestamp, a few words and numbers, as rows of an event log.
    records = [
        f"{n:08d}|2026-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}T{rng.randrange(24):02d}:"
        f"{rng.randrange(60):02d}|{rng.choice(_WORDS)}.{rng.choice(_AREAS)}|{rng.random():.6f}|".encode()
        + rng.randbytes(rng.randrange(8, 40))
        for n in range(20_000)
    ]
    with path.open("wb") as out:
        for _ in range(BINARY_SIZE // MiB):
            if compressible:
                # A database-like image: 4 KiB pages of varied records and free space.
                out.write(b"".join(_page(rng, records) for _ in range(MiB // PAGE)))
            else:
                out.write(rng.randbytes(MiB))


def _json_sizes(rng: random.Random) -> list[int]:
    # Mostly small files with a long tail, as real config folders have: mean about 11 KB.
    return [min(JSON_MAX, JSON_MIN + int(rng.expovariate(1 / JSON_MEAN_EXTRA))) for _ in range(JSON_FILES)]


def large_tree() -> Tree:
    """The ~1 GiB tree; generated on first use, then reused while its stamp matches."""
    root = WORK / "large" / "tree"
    stamp = WORK / "large.stamp"
    expected = f"{GENERATOR_VERSION}:{SEED}:{JSON_FILES}:{BINARY_SIZE}"
    if stamp.exists() and stamp.read_text() == expected and root.is_dir():
        return _measure(root)
    shutil.rmtree(root, ignore_errors=True)
    rng = random.Random(SEED)
    # Documents are runs of pre-rendered device records, so generation is fast, every file
    # is valid JSON and differs from the others, and it compresses like real config.
    pool = [json.dumps(_device(rng, i), indent=4) for i in range(4000)]
    for index, size in enumerate(_json_sizes(rng)):
        area = _AREAS[index % len(_AREAS)]
        folder = root / "config" / area / f"site-{index % 60:02d}" / f"group-{index % 7}"
        folder.mkdir(parents=True, exist_ok=True)
        head = f'{{"file": {index}, "seed": {rng.getrandbits(64)}, "devices": [\n'
        records, length, at = [], len(head), rng.randrange(len(pool))
        while length < size:
            records.append(pool[at % len(pool)])
            length += len(records[-1]) + 2
            at += 1
        text = head + ",\n".join(records) + "\n]}\n"
        (folder / f"{area}-{index:05d}.json").write_text(text)
    (root / "media").mkdir(parents=True)
    (root / "firmware").mkdir()
    (root / "data").mkdir()
    _binary(root / "media" / "intro-loop.mp4", SEED + 1, compressible=False)
    _binary(root / "firmware" / "controller-v4.2.bin", SEED + 2, compressible=False)
    _binary(root / "data" / "events.db", SEED + 3, compressible=True)
    stamp.write_text(expected)
    return _measure(root)


def _measure(root: Path) -> Tree:
    files = size = 0
    for folder, _dirs, names in os.walk(root):
        for name in names:
            files += 1
            size += os.lstat(os.path.join(folder, name)).st_size
    return Tree(root=root, files=files, size=size)
