"""Start-up: a bad environment value is one line naming the variable (exit 2, no traceback),
and `python -m server --host/--port/--config` serves like `backups serve`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.server_process import ROOT, START_TIMEOUT, free_port

BAD = [
    ("BACKUPS_PORT", "abc"),
    ("BACKUPS_PORT", "0"),
    ("BACKUPS_PORT", "65536"),
    ("BACKUPS_AUTH", ""),
    ("BACKUPS_AUTH", "maybe"),
    ("BACKUPS_MAX_PAGE_SIZE", "-5"),
    ("BACKUPS_MAX_PAGE_SIZE", "0"),
    ("BACKUPS_MAX_QUERY_DEPTH", "0"),
    ("BACKUPS_MAX_QUERY_TOKENS", "many"),
    ("BACKUPS_MAX_QUERY_ALIASES", "-1"),
    ("BACKUPS_MAX_CONCURRENT_OPERATIONS", "0"),
    ("BACKUPS_MAX_REQUEST_BYTES", "10"),
    ("BACKUPS_MAX_UPLOAD_BYTES", "1.5"),
    ("BACKUPS_MAX_SUBSCRIPTIONS_PER_CONNECTION", "0"),
    ("BACKUPS_AUTH_RECHECK_SECONDS", "0"),
    ("BACKUPS_IMPORT_MAX_ENTRIES", "0"),
    ("BACKUPS_IMPORT_MAX_TOTAL_BYTES", "-1"),
    ("BACKUPS_IMPORT_MAX_ENTRY_BYTES", "x"),
    ("BACKUPS_IMPORT_MAX_MANIFEST_BYTES", "0"),
    ("BACKUPS_MAX_DOWNLOAD_EXPIRY_SECONDS", "0"),
    ("BACKUPS_RESTART_TIMEOUT", "-3"),
    ("BACKUPS_TEST_ENTRY_DELAY", "-1"),
    ("BACKUPS_LOG_LEVEL", "loud"),
    ("BACKUPS_DATA_DIR", ""),
    ("BACKUPS_LOCAL_COPIES_DIR", " "),
    ("BACKUPS_CONFIG", ""),
    ("BACKUPS_HOST", ""),
    ("BACKUPS_SECRET_KEY", ""),
    ("BACKUPS_PUBLIC_URL", "ftp://example.org"),
    ("BACKUPS_DATABASE_URL", "not a url"),
    ("BACKUPS_DATABASE_URL", "mysql://root@localhost/db"),
    ("BACKUPS_FAST_EXECUTION", "maybe"),
    ("BACKUPS_SAFETY_MAX_AGE_DAYS", "0"),
    ("BACKUPS_SAFETY_MAX_AGE_DAYS", "-3"),
    ("BACKUPS_SAFETY_MAX_AGE_DAYS", "36501"),
    ("BACKUPS_SAFETY_MAX_AGE_DAYS", "a month"),
    ("BACKUPS_CHANGE_CHECK_SECONDS", "0"),
    ("BACKUPS_CHANGE_CHECK_SECONDS", "86401"),
]


def _env(tmp_path: Path, **values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKUPS_")}
    return {**env, "BACKUPS_DATA_DIR": str(tmp_path / "data"), "BACKUPS_LOG_LEVEL": "warning", **values}


def _run(tmp_path: Path, *args: str, **values: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server", *args],
        cwd=ROOT,
        env=_env(tmp_path, **values),
        capture_output=True,
        text=True,
        timeout=60,
    )


def _one_line_naming(result: subprocess.CompletedProcess[str], name: str) -> str:
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr and result.stdout == "", result
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("backups: ") and name in lines[0], result.stderr
    return lines[0]


# Every bad value through `serve`; the other entry points (bare `python -m server`, `token`) with one each.
CASES = [(("serve",), k, v) for k, v in BAD] + [((), "BACKUPS_PORT", "abc"), (("token", "list"), "BACKUPS_AUTH", "")]


@pytest.mark.parametrize(("command", "variable", "value"), CASES, ids=[f"{' '.join(c)}:{k}={v!r}" for c, k, v in CASES])
def test_a_bad_setting_is_one_line_exit_2_and_touches_nothing(
    tmp_path: Path, command: tuple[str, ...], variable: str, value: str
) -> None:
    line = _one_line_naming(_run(tmp_path, *command, **{variable: value}), variable)
    assert "expected" in line
    if variable != "BACKUPS_SECRET_KEY":
        assert repr(value) in line
    assert not (tmp_path / "data").exists()  # refused before anything was made


@pytest.mark.parametrize("port", ["0", "70000"])
def test_a_bad_port_option_is_one_line_too(tmp_path: Path, port: str) -> None:
    line = _one_line_naming(_run(tmp_path, "--port", port), "--port")
    assert "1 to 65535" in line
    assert not (tmp_path / "data").exists()


def test_a_key_is_never_echoed(tmp_path: Path) -> None:
    result = _run(tmp_path, BACKUPS_SECRET_KEY="   ")
    assert "   " not in _one_line_naming(result, "BACKUPS_SECRET_KEY").split(":", 1)[1].replace("is not", "")


@pytest.mark.parametrize("layout", ["options only", "options before serve", "serve with options"])
def test_python_m_server_with_options_serves(tmp_path: Path, layout: str) -> None:
    port = free_port()
    config = tmp_path / "backups.toml"
    config.write_text('[[sources]]\nname = "settings"\nkind = "settings"\n')
    options = ["--host", "127.0.0.1", "--port", str(port), "--config", str(config)]
    args = {
        "options only": options,
        "options before serve": [*options, "serve"],
        "serve with options": ["serve", *options],
    }[layout]
    # The environment says otherwise: the options win, as with `backups serve`.
    env = _env(tmp_path, BACKUPS_PORT=str(free_port()), BACKUPS_AUTH="off")
    process = subprocess.Popen(
        [sys.executable, "-m", "server", *args], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the server did not come up"
                time.sleep(0.1)
        assert response.status_code == 200
        sources = httpx.post(f"http://127.0.0.1:{port}/graphql", json={"query": "{ system { state } }"}, timeout=5)
        assert sources.json()["data"]["system"]["state"] == "RUNNING"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        if process.stderr:
            process.stderr.close()


@pytest.mark.parametrize(
    ("location", "problem"),
    [
        ('name = "usb"\nkind = "folder"\npath = "{data}/usb"', "location 'usb' ("),
        ('name = "usb"\nkind = "folder"\npath = "/mnt/usb"\ncolour = "red"', "location 'usb': unknown key 'colour'"),
        ('name = "Off Site"\nkind = "folder"\npath = "/mnt/usb"', "location 'Off Site': name must be"),
    ],
)
def test_a_bad_location_stops_serve_with_one_line(tmp_path: Path, location: str, problem: str) -> None:
    config = tmp_path / "backups.toml"
    data = tmp_path / "data"
    config.write_text(
        '[[sources]]\nname = "settings"\nkind = "settings"\n\n[[locations]]\n' + location.format(data=data) + "\n"
    )
    line = _one_line_naming(_run(tmp_path, "serve", BACKUPS_CONFIG=str(config)), str(config))
    assert problem in line
    assert not data.exists()  # refused before anything was made
