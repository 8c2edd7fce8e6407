"""The built reference page (web/dist): whether it is current, and building it with npm when it is not."""

from __future__ import annotations

import fcntl
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"
DIST_INDEX = WEB / "dist" / "index.html"
# What the build reads: a change to any of them makes web/dist stale.
SOURCES = [
    "src",
    "index.html",
    "graphiql.html",
    "package.json",
    "package-lock.json",
    "vite.config.ts",
    "codegen.ts",
    "tsconfig.json",
]


def newest_source_mtime() -> float:
    """The modification time of the newest file the build reads (schema.graphql included)."""
    times = [(ROOT / "schema.graphql").stat().st_mtime]
    for name in SOURCES:
        path = WEB / name
        files = (
            [p for p in path.rglob("*") if p.is_file() and "gql" not in p.relative_to(WEB).parts]
            if path.is_dir()
            else [path]
        )
        times += [f.stat().st_mtime for f in files if f.exists()]
    return max(times)


def is_current() -> bool:
    """Whether web/dist exists and is newer than every source of the page."""
    return DIST_INDEX.is_file() and DIST_INDEX.stat().st_mtime >= newest_source_mtime()


@contextmanager
def _one_at_a_time() -> Iterator[None]:
    """Held while npm installs or builds: pytest-xdist workers (and `make web`-less runs in
    parallel) would otherwise run `npm ci` into the same node_modules at once and break it."""
    with open(WEB / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ensure_installed() -> None:
    """`npm ci` in web/ when node_modules is missing or older than package-lock.json (npm must be there)."""
    with _one_at_a_time():
        _install_if_stale()


def _install_if_stale() -> None:
    installed = WEB / "node_modules" / ".package-lock.json"
    if not installed.is_file() or installed.stat().st_mtime < (WEB / "package-lock.json").stat().st_mtime:
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=WEB, check=True, capture_output=True, timeout=600)


def ensure_built() -> str | None:
    """Build the page when stale and npm is there; None when it is usable, else why not (one line)."""
    if is_current():
        return None
    if shutil.which("node") is None or shutil.which("npm") is None:
        if DIST_INDEX.is_file():
            return None  # older than its sources, but the best there is without Node
        return "the page is not built and Node.js/npm are missing (install Node.js 20+, then `make web`)"
    with _one_at_a_time():
        if is_current():  # another worker built it while this one waited
            return None
        _install_if_stale()
        result = subprocess.run(["npm", "run", "build"], cwd=WEB, capture_output=True, text=True, timeout=600)
        if result.returncode != 0:
            raise RuntimeError(f"`npm run build` in web/ failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return None
