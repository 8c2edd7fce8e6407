"""The processes a benchmark talks to: our server, the peer apps, nginx. All on loopback,
all started and stopped by their own process handles."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from bench.workloads import WORK
from tests.support.server_process import ServerProcess, free_port

ROOT = Path(__file__).resolve().parents[1]
RUNS = WORK / "runs"
# ext4 without a journal avoids reusing an inode freed in the last 60 s (300 s while its
# inode-table block is unwritten; fs/ext4/ialloc.c: recently_deleted) and checks each such
# inode again for every file it creates. Measured on a private journal-less ext4: a first
# capture 12.7 s right after deleting 100,000 files, 5.8 s after a sync and 70 s (5.4-6.2 s
# on a filesystem that had seen no deletion). See settle_deletions.
RECENTLY_DELETED_SECONDS = 70
_LAST_DELETION = RUNS / ".last-deletion"  # wall-clock time of the bench's last big removal


def fresh_dir(name: str) -> Path:
    """An empty folder under bench/work/runs/ (removed first if a previous run left it)."""
    path = RUNS / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def remove_dirs(names: list[str]) -> None:
    """Remove these folders under bench/work/runs/, noting when (see settle_deletions)."""
    for name in names:
        path = RUNS / name
        if path.exists():
            shutil.rmtree(path, ignore_errors=True)
            _LAST_DELETION.write_text(f"{time.time()}\n")


def settle_deletions() -> None:
    """Wait until the bench's own last big removal (this run's or an earlier one's) is out of
    ext4's no-journal recently-deleted window, printing that it waits.

    Creating files soon after many deletions costs several times more there; a real first
    capture does not follow the bench deleting 50,000 files. With a journal the check does
    not exist, and nothing is waited for when the last removal is old enough. The sync
    writes the inode-table blocks, which makes the window the short one.
    """
    try:
        removed = float(_LAST_DELETION.read_text())
    except (FileNotFoundError, ValueError):
        return
    os.sync()
    left = removed + RECENTLY_DELETED_SECONDS - time.time()
    if left > 0:
        print(
            f"   (waiting {left:.0f} s: the bench deleted ~25,000 files or more {time.time() - removed:.0f} s ago, "
            "inside ext4's recently-deleted window)",
            flush=True,
        )
        time.sleep(left)


def drop_from_cache(folder: Path) -> None:
    """Write a measurement's output to disk and drop it from the page cache, without deleting it.

    The benchmarks keep their outputs until the end (see remove_dirs); left in memory, the
    capture's three runs' ~9 GB of them made the later measurements reclaim memory as they
    wrote: `tar -cf` took 1.2-3.0 s so, against 0.64-0.70 s when each output had been deleted
    before the next measurement."""
    os.sync()
    for path, _dirs, names in os.walk(folder):
        for name in names:
            with contextlib.suppress(OSError):
                fd = os.open(os.path.join(path, name), os.O_RDONLY | os.O_NOFOLLOW)
                try:
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                finally:
                    os.close(fd)


@contextlib.contextmanager
def our_server(name: str, **env: str) -> Iterator[ServerProcess]:
    """`python -m server serve` with its own data folder and SQLite database."""
    server = ServerProcess(data_dir=fresh_dir(name) / "data", env_overrides=env)
    server.start(timeout=60)
    try:
        yield server
    finally:
        server.close()


def _wait_ready(process: subprocess.Popen[bytes], url: str, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited at start-up:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            httpx.get(url, timeout=1)
            return
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up:\n{log.read_text()[-3000:]}")


@contextlib.contextmanager
def _process(
    command: list[str], url: str, log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        process = subprocess.Popen(
            command, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        _wait_ready(process, url, log)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def peer_app(app: str, database: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """A peer ASGI app from bench/peer_apps.py under stock uvicorn, reading `database`."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = RUNS / f"peer-{app}.log"
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        f"bench.peer_apps:{app}",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    with _process(command, url + "/", log, {"BENCH_DATABASE": str(database)}) as process:
        yield process, url


NGINX_CONF = """
daemon off;
master_process off;
worker_processes 1;
error_log {root}/error.log warn;
pid {root}/nginx.pid;
events {{ worker_connections 64; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    client_body_temp_path {root}/tmp;
    proxy_temp_path {root}/tmp;
    fastcgi_temp_path {root}/tmp;
    uwsgi_temp_path {root}/tmp;
    scgi_temp_path {root}/tmp;
    server {{
        listen 127.0.0.1:{port};
        root {files};
    }}
}}
"""


@contextlib.contextmanager
def nginx(files: Path, nginx_path: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """nginx (one worker, sendfile on) serving `files` on a free loopback port."""
    root = fresh_dir("nginx")
    (root / "tmp").mkdir()
    port = free_port()
    (root / "nginx.conf").write_text(NGINX_CONF.format(root=root, port=port, files=files))
    command = [nginx_path, "-p", str(root), "-c", str(root / "nginx.conf")]
    url = f"http://127.0.0.1:{port}"
    with _process(command, url + "/", root / "stdout.log") as process:
        yield process, url
