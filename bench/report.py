"""The results: one row per benchmarked path, written as Markdown and JSON."""

from __future__ import annotations

import json
import os
import platform
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

HERE = Path(__file__).resolve().parent
MiB = 1024 * 1024


@dataclass
class Row:
    """One path measured against its peers in the same run."""

    path: str
    ours: str
    peers: str
    ratio: str
    memory: str
    target: str
    met: bool | None  # None: not judged (no target, or not measured in this run)
    note: str = ""
    numbers: dict[str, Any] = field(default_factory=dict)


def mb(size: float) -> str:
    return f"{size / MiB:.0f} MB" if size >= 10 * MiB else f"{size / MiB:.1f} MB"


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "memory": f"{psutil.virtual_memory().total / 1024**3:.0f} GiB",
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
        "executable": sys.executable,
    }


def markdown(rows: list[Row], info: dict[str, Any]) -> str:
    m = info["machine"]
    lines = [
        f"Run {info['finished']} on {m['cores']} cores ({m['cpu']}), {m['memory']} RAM, "
        f"Python {m['python']}; median of {info['runs']} runs, peers run in the same session. "
        f"Whole run: {info['seconds']:.0f} s.",
        "",
        "| path | ours | peers | ratio | memory | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        met = {True: "yes", False: "**no**", None: "-"}[row.met]
        lines.append(f"| {row.path} | {row.ours} | {row.peers} | {row.ratio} | {row.memory} | {row.target} | {met} |")
    notes = [f"- **{row.path}**: {row.note}" for row in rows if row.note]
    if notes:
        lines += ["", "Notes:", *notes]
    peers = ", ".join(f"{name}: {version}" for name, version in info["peers"].items())
    lines += ["", f"Peers: {peers}."]
    return "\n".join(lines) + "\n"


def write(rows: list[Row], *, runs: int, seconds: float, peers: dict[str, str], folder: Path = HERE) -> str:
    """Write results.md and results.json into `folder` (bench/); returns the Markdown."""
    info = {
        "finished": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "runs": runs,
        "seconds": seconds,
        "machine": machine(),
        "peers": peers,
    }
    text = markdown(rows, info)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.md").write_text(text)
    (folder / "results.json").write_text(
        json.dumps({**info, "rows": [asdict(row) for row in rows]}, indent=2, default=str) + "\n"
    )
    return text
