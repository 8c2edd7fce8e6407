"""Start the real server (`python -m server serve`) in a subprocess, as users run it."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[2]
TEST_DATABASE_URL = os.environ.get("BACKUPS_TEST_DATABASE_URL")
# The first start prints the admin token it made, framed, on stderr (see server/notices.py).
FIRST_TOKEN = re.compile(r"^\s+(bk_[A-Za-z0-9_-]{20,})\s*$", re.MULTILINE)
# How long a server subprocess may take to start: a Python start-up that takes 2 s alone took
# over 30 s with `make test`'s parallel workers and other work on a busy 2-core machine.
START_TIMEOUT = 90.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class FreshDatabase:
    """A database of its own for one server: a SQLite file, or a new PostgreSQL database."""

    def __init__(self, data_dir: Path) -> None:
        self.admin_url = TEST_DATABASE_URL
        if self.admin_url is None:
            self.url = f"sqlite:///{data_dir / 'backups.db'}"
            self.name = None
            return
        self.name = f"backups_test_{uuid.uuid4().hex[:12]}"
        self._admin(f'CREATE DATABASE "{self.name}"')
        self.url = make_url(self.admin_url).set(database=self.name).render_as_string(hide_password=False)

    def _admin(self, statement: str) -> None:
        import psycopg

        url = make_url(self.admin_url).set(drivername="postgresql")
        dsn = url.render_as_string(hide_password=False)
        with psycopg.connect(dsn, autocommit=True) as connection:
            connection.execute(statement)

    def drop(self) -> None:
        if self.name is not None:
            self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


class ServerCommon:
    """What both kinds of test server offer: addresses, the CLI on their data, other tokens."""

    data_dir: Path
    env_overrides: dict[str, str]
    port: int
    database: FreshDatabase | None
    token: str | None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def graphql_url(self) -> str:
        return f"{self.url}/graphql"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql"

    def fresh_database(self) -> FreshDatabase:
        """This server's database, made on first use."""
        if self.database is None:
            self.database = FreshDatabase(self.data_dir)
        return self.database

    @property
    def env(self) -> dict[str, str]:
        """The environment the server runs with (and `backups token` needs, to find its database)."""
        return {
            **os.environ,
            "BACKUPS_DATA_DIR": str(self.data_dir),
            "BACKUPS_DATABASE_URL": self.fresh_database().url,
            "BACKUPS_HOST": "127.0.0.1",
            "BACKUPS_PORT": str(self.port),
            "BACKUPS_LOG_LEVEL": "warning",
            **self.env_overrides,
        }

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run `python -m server ARGS` against this server's data folder and database."""
        result = subprocess.run(
            [sys.executable, "-m", "server", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"`backups {' '.join(args)}` failed ({result.returncode}):\n{result.stderr}")
        return result

    def create_token(self, name: str, role: str, *extra: str) -> str:
        """A new API token made with `backups token create`."""
        return self.cli("token", "create", "--name", name, "--role", role, *extra).stdout.strip()

    def with_token(self, token: str | None) -> Caller:
        """This server as seen with another token (None: with none); accepted by every helper."""
        return Caller(self, token)


@dataclass
class ServerProcess(ServerCommon):
    """A running server in a subprocess; `stop`, `kill` and `start` act on its process by id."""

    data_dir: Path
    env_overrides: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    database: FreshDatabase | None = None
    # The admin token the first start printed; the test helpers send it unless told otherwise.
    token: str | None = None

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}-server.log"

    def start(self, timeout: float = START_TIMEOUT) -> ServerProcess:
        env = self.env
        log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "server", "serve"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        try:
            self._wait_healthy(timeout)
        except BaseException:
            # Not left running (and warned about by whichever test then collects it).
            self.kill()
            raise
        if self.token is None:
            with self.log_path.open("rb") as output:
                output.seek(log_start)
                if found := FIRST_TOKEN.search(output.read().decode(errors="replace")):
                    self.token = found[1]
        return self

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited at start-up:\n{self.log_path.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"server did not become healthy:\n{self.log_path.read_text()[-3000:]}")

    def stop(self, timeout: float = 20.0) -> int | None:
        """A graceful stop (SIGTERM), as a service manager does it."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def kill(self) -> None:
        """SIGKILL: the process dies at once, with no chance to clean up."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def close(self) -> None:
        self.stop()
        if self.database is not None:
            self.database.drop()

    def memory_bytes(self) -> int:
        import psutil

        assert self.process is not None
        return psutil.Process(self.process.pid).memory_info().rss


@dataclass(frozen=True)
class Caller:
    """A server and the token to call it with: what tests/support/api.py helpers talk to."""

    server: ServerCommon
    token: str | None

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def graphql_url(self) -> str:
        return self.server.graphql_url

    @property
    def ws_url(self) -> str:
        return self.server.ws_url

    def with_token(self, token: str | None) -> Caller:
        return Caller(self.server, token)
