"""The peers' programs: installed from Debian's packages when missing."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

# program -> Debian package that provides it
PROGRAMS = {
    "wrk": "wrk",
    "restic": "restic",
    "zip": "zip",
    "nginx": "nginx",
    "tar": "tar",
    "cp": "coreutils",
    "diff": "diffutils",
    "curl": "curl",
    "rclone": "rclone",
    "age": "age",
}


def _which(program: str) -> str | None:
    # nginx lives in /usr/sbin, which a non-login PATH may lack.
    return shutil.which(program) or shutil.which(program, path="/usr/sbin:/sbin")


def ensure_programs() -> dict[str, str]:
    """Install whatever peer program is missing (apt-get, as root); returns program -> path."""
    missing = sorted({PROGRAMS[p] for p in PROGRAMS if _which(p) is None})
    if missing:
        if os.geteuid() != 0:
            raise SystemExit(f"missing {', '.join(missing)}: install them (apt-get install) or run as root")
        print(f"installing {', '.join(missing)} from Debian's packages ...", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
        )
        # Debian starts nginx on install; the benchmark runs its own on a free port.
        subprocess.run(["nginx", "-s", "stop"], check=False, capture_output=True)
    paths = {p: _which(p) for p in PROGRAMS}
    lost = [p for p, path in paths.items() if path is None]
    if lost:
        raise SystemExit(f"still missing after install: {', '.join(lost)}")
    return {p: path for p, path in paths.items() if path}


def versions(paths: dict[str, str]) -> dict[str, str]:
    """One line of version text per peer, for the results."""
    flags = {
        "wrk": ["-v"],
        "restic": ["version"],
        "zip": ["-v"],
        "nginx": ["-v"],
        "tar": ["--version"],
        "cp": ["--version"],
        "diff": ["--version"],
        "curl": ["--version"],
        "rclone": ["version"],
        "age": ["--version"],
    }
    found = {}
    for program, path in paths.items():
        result = subprocess.run([path, *flags[program]], capture_output=True, text=True)
        text = (result.stdout or result.stderr).strip().splitlines()
        line = next((l for l in text if re.search(r"\d+\.\d+", l)), text[0] if text else "?")
        found[program] = line.strip()[:80]
    return found


def restic_repo(restic: str, scratch: Path, folder: Path) -> tuple[dict[str, str], list[str]]:
    """A restic repository in `scratch`/repo holding one snapshot of `folder` (backed up from
    inside it, so paths start at its top); returns the environment and cache flags to use it."""
    env = {**os.environ, "RESTIC_PASSWORD": "bench", "RESTIC_REPOSITORY": str(scratch / "repo")}
    cache = ["--cache-dir", str(scratch / "cache")]
    for command in ([restic, "init", *cache], [restic, "backup", "--quiet", *cache, "."]):
        result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=folder)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return env, cache
