"""The banner's `backups` command (server/notices.py cli_command): plain `backups` only when the
shell that started the server finds the venv's script; else the script by its path. `make run`
puts the venv on the server's PATH and passes the shell's own as BACKUPS_SHELL_PATH."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.server_process import ROOT

VENV_BIN = Path(sys.executable).parent
PRINT = "from server.notices import cli_command; print(cli_command())"


def banner_command(cwd: Path, **env: str) -> str:
    environment = {k: v for k, v in os.environ.items() if k not in ("PATH", "BACKUPS_SHELL_PATH")}
    environment |= {"PYTHONPATH": str(ROOT), **env}
    result = subprocess.run([sys.executable, "-c", PRINT], cwd=cwd, env=environment, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.fixture(autouse=True)
def venv_has_the_script() -> None:
    if not (VENV_BIN / "backups").exists():
        pytest.skip("the venv has no `backups` script (pip install -e .)")


def test_backups_when_the_starting_shell_finds_the_venvs_script(tmp_path: Path) -> None:
    assert banner_command(tmp_path, PATH=f"{VENV_BIN}:/usr/bin:/bin") == "backups"


def test_the_scripts_path_when_the_shell_does_not_find_it(tmp_path: Path) -> None:
    assert banner_command(tmp_path, PATH="/usr/bin:/bin") == str(VENV_BIN / "backups")
    inside = VENV_BIN.parent.parent  # run from the checkout holding .venv: a short relative path
    assert banner_command(inside, PATH="/usr/bin:/bin") == os.path.relpath(VENV_BIN / "backups", inside)


def test_make_run_the_servers_path_has_the_venv_but_the_shells_does_not(tmp_path: Path) -> None:
    # As `make run` starts it: the server finds `backups`, the user's shell would not.
    shell_path = "/usr/bin:/bin"
    command = banner_command(tmp_path, PATH=f"{VENV_BIN}:{shell_path}", BACKUPS_SHELL_PATH=shell_path)
    assert command == str(VENV_BIN / "backups")
    assert banner_command(tmp_path, PATH=f"{VENV_BIN}:{shell_path}", BACKUPS_SHELL_PATH=f"{VENV_BIN}:{shell_path}") == (
        "backups"
    )


def test_make_run_serves_with_the_venv_on_path_and_the_shells_path_passed() -> None:
    recipe = (ROOT / "Makefile").read_text().split("\nrun:", 1)[1].split("\n\n", 1)[0]
    assert 'BACKUPS_SHELL_PATH="$$PATH" PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m server serve' in recipe
