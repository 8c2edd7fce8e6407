"""Run wrk against one URL and read its throughput and latency percentiles."""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.measure import run

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


@dataclass(frozen=True)
class WrkResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def parse(output: str) -> WrkResult:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    errors = int(bad.group(1)) if bad else 0
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    return WrkResult(rps, p50, p99, errors)


def wrk(
    url: str,
    *,
    connections: int,
    seconds: float,
    body: dict | None = None,
    headers: dict[str, str] | None = None,
    wrk_path: str = "wrk",
) -> WrkResult:
    """One wrk run (one thread: the machine has two cores, and the server needs one)."""
    command = [wrk_path, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", url]
    with tempfile.TemporaryDirectory() as folder:
        if body is not None:
            lines = ['wrk.method = "POST"', 'wrk.headers["Content-Type"] = "application/json"']
            lines += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in (headers or {}).items()]
            lines.append(f"wrk.body = {json.dumps(json.dumps(body))}")
            script = Path(folder) / "post.lua"
            script.write_text("\n".join(lines) + "\n")
            command[1:1] = ["-s", str(script)]
        return parse(run(command).stdout)
