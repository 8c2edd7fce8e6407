"""The first start's banner prints a `backups` command that works as printed, from the folder
the server was started in, with the PATH it was started with."""

from __future__ import annotations

import re
import subprocess

from tests.support.server_process import ROOT


def test_the_printed_token_command_works_as_printed(make_server_process) -> None:
    server = make_server_process(PATH="/usr/local/bin:/usr/bin:/bin")  # no venv on PATH, as after `make run`
    server.start()
    banner = server.log_path.read_text()
    found = re.search(r"Lost this one\? On this machine: (.+) token create --name admin2 --role admin", banner)
    assert found, banner
    command = found[1]
    assert command == ".venv/bin/backups" or command.endswith("/bin/backups") or " -m server" in command, command
    env = {**server.env, "PATH": "/usr/local/bin:/usr/bin:/bin"}
    result = subprocess.run(
        f"{command} token create --name from-banner --role viewer",
        shell=True,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith("bk_")
