"""The real server inside the test process: create_app with its lifespan, served by uvicorn on
a loopback port from a thread with its own event loop, so tests talk to it over real HTTP and
websockets exactly as to a subprocess, without paying for a Python start-up each time.

It gets its config and test seams passed in (never from os.environ, which every server in
the process would share), and a clock the test can move forward instead of sleeping. What needs a
process of its own (SIGKILL, signals, memory, the start-up output) uses ServerProcess."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from server.app import create_app
from server.cli.main import uvicorn_options
from server.config.environment import CONFIG_FILE_VARIABLE, ServerConfig
from server.model.access.tokens import Role, parse_duration
from server.storage.data_dir_lock import DataDirLock, lock_data_dir
from server.test_seams import TestSeams
from tests.support.server_process import FreshDatabase, ServerCommon, free_port


def _finish_pending(loop: asyncio.AbstractEventLoop) -> None:
    """What asyncio.run (and so uvicorn in production) does before it closes its loop: cancel the
    tasks still pending and let them end, then close the async generators. A loop closed with
    tasks that never started (graphql-core settles a failed field's siblings in background
    tasks) left coroutines never awaited, reported by the garbage collector in a later test."""
    pending = asyncio.all_tasks(loop)
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's loop when it is installed, as uvicorn's loop="auto" picks; else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class ExplicitConfig(ServerConfig):
    """The config from the arguments only: the environment of the test process is not read."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        **_: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


class ExplicitSeams(TestSeams):
    """Test seams from the arguments only, likewise."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        **_: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def config_from(env: dict[str, str]) -> tuple[ServerConfig, TestSeams]:
    """The config and the test seams from BACKUPS_* variables given as a dict (BACKUPS_TEST_*:
    the seams); an unknown name is an error, not ignored."""
    config: dict[str, Any] = {}
    seams: dict[str, Any] = {}
    for name, value in env.items():
        seam = name.removeprefix("BACKUPS_TEST_").lower()
        field = name.removeprefix("BACKUPS_").lower()
        if name.startswith("BACKUPS_TEST_") and seam in TestSeams.model_fields:
            seams[seam] = value
        elif name == CONFIG_FILE_VARIABLE:  # the field config_file, read from BACKUPS_CONFIG
            config["config_file"] = value
        elif name.startswith("BACKUPS_") and field in ServerConfig.model_fields and field != "config_file":
            config[field] = value
        else:
            raise ValueError(f"not a server setting: {name}")
    return ExplicitConfig(**config), ExplicitSeams(**seams)


class TestClock:
    """The real wall clock plus an offset that `advance` grows: time passes at once.
    `freeze` stops it at a given instant (advance still moves it), `thaw` lets it run on."""

    __test__ = False  # not a test class, despite its name

    def __init__(self) -> None:
        self._offset_ns = 0
        self._frozen_ns: int | None = None
        self._lock = threading.Lock()

    def advance(self, seconds: float) -> None:
        """Move the clock forward, as if `seconds` had passed."""
        with self._lock:
            self._offset_ns += int(seconds * 1e9)
            if self._frozen_ns is not None:
                self._frozen_ns += int(seconds * 1e9)

    def freeze(self, at: float) -> None:
        """Stop the clock at `at` (seconds since the epoch, not before its present)."""
        with self._lock:
            self._frozen_ns = int(at * 1e9)

    def thaw(self) -> None:
        """Let the clock run on from where it stands."""
        with self._lock:
            if self._frozen_ns is not None:
                self._offset_ns = max(self._offset_ns, self._frozen_ns - time.time_ns())
                self._frozen_ns = None

    def time_ns(self) -> int:
        """time.time_ns() plus the offset, or the frozen instant."""
        frozen = self._frozen_ns
        return frozen if frozen is not None else time.time_ns() + self._offset_ns

    def time(self) -> float:
        """time.time() plus the offset."""
        return self.time_ns() / 1e9


@dataclass
class InProcessServer(ServerCommon):
    """A running server in this process; `stop` and `start` shut it down gracefully and
    start it again on the same data folder, database and port (there is no `kill`)."""

    data_dir: Path
    env_overrides: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    clock: TestClock = field(default_factory=TestClock)
    database: FreshDatabase | None = None
    # The first admin token, handed over by the server when it makes it (never printed).
    token: str | None = None
    _server: uvicorn.Server | None = None
    _app: Any = None
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _failure: BaseException | None = None
    _data_lock: DataDirLock | None = None

    def config(self) -> tuple[ServerConfig, TestSeams]:
        """The config and test seams this server runs with, from its own values and overrides only."""
        return config_from(
            {
                "BACKUPS_DATA_DIR": str(self.data_dir),
                "BACKUPS_DATABASE_URL": self.fresh_database().url,
                "BACKUPS_HOST": "127.0.0.1",
                "BACKUPS_PORT": str(self.port),
                "BACKUPS_LOG_LEVEL": "warning",
                **self.env_overrides,
            }
        )

    def _took_first_token(self, secret: str, config: ServerConfig) -> None:
        if self.token is None:
            self.token = secret

    def start(self, timeout: float = 30.0) -> InProcessServer:
        config, seams = self.config()
        app = create_app(
            config, seams=seams, clock=self.clock, on_first_token=self._took_first_token, own_process=False
        )
        # The same options as `backups serve`, minus the logging set-up (log_config=None:
        # the test process's logging stays pytest's); the data folder locked as it locks it.
        self._data_lock = lock_data_dir(config.data_dir)
        server = uvicorn.Server(
            uvicorn.Config(app, log_config=None, log_level="warning", lifespan="on", **uvicorn_options(config))
        )
        self._failure = None
        self._server, self._app = server, app
        self._thread = threading.Thread(target=self._serve, args=(server,), name=f"server-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive():
                self._data_lock.release()
                raise RuntimeError(f"in-process server did not start: {self._failure!r}") from self._failure
            if time.monotonic() > deadline:
                server.should_exit = True
                self._thread.join(10)
                self._data_lock.release()
                raise RuntimeError("in-process server did not start in time")
            time.sleep(0.005)
        return self

    def _serve(self, server: uvicorn.Server) -> None:
        # The loop uvicorn would pick (uvloop when installed), owned here so that
        # create_token can hand the server work from the test's thread.
        loop = new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(server.serve())
        except BaseException as error:  # reported by start(), or by stop() as a failed exit
            self._failure = error
        finally:
            try:
                _finish_pending(loop)
            finally:
                loop.close()

    def create_token(self, name: str, role: str, *extra: str) -> str:
        """A new API token, made as `backups token create` makes it (created by "cli"), by the
        running server's own token service: a CLI start-up per token cost seconds under load."""
        if self._server is None or not self._server.started or self._loop is None:
            return super().create_token(name, role, *extra)
        options = dict(zip(extra[::2], extra[1::2], strict=True))
        if set(options) - {"--expires-in"}:
            raise ValueError(f"create_token takes only --expires-in, not {extra}")
        expires_in = parse_duration(options["--expires-in"]) if "--expires-in" in options else None
        access = self._app.state.backend.services.access
        made = access.create(name=name, role=Role(role), expires_in=expires_in, created_by="cli")
        _, secret = asyncio.run_coroutine_threadsafe(made, self._loop).result(30)
        return secret

    def stop(self, timeout: float = 20.0) -> int | None:
        """A graceful stop, as uvicorn does on SIGTERM; 0 when it went cleanly."""
        if self._server is None or self._thread is None:
            return None
        self._server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout)
        clean = not self._thread.is_alive() and self._failure is None and self._server.started
        self._server = self._thread = None
        if self._data_lock is not None:
            self._data_lock.release()
            self._data_lock = None
        return 0 if clean else 1

    def close(self) -> None:
        self.stop()
        if self.database is not None:
            self.database.drop()
