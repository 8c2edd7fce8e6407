"""BACKUPS_SERVER_NAME (default the host name) and BACKUPS_HEARTBEAT_URL as the server config
reads them: a bad value is one line naming the variable and what it accepts."""

from __future__ import annotations

import socket

import pytest

from server.config.environment import SettingsError, load_config
from server.model.names import is_server_name


def test_the_server_name_defaults_to_the_host_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BACKUPS_SERVER_NAME", raising=False)
    assert load_config().server_name == socket.gethostname()
    monkeypatch.setenv("BACKUPS_SERVER_NAME", "Hall 2 · rack B")
    assert load_config().server_name == "Hall 2 · rack B"


@pytest.mark.parametrize("bad", ["", "a/b", "a\\b", "tab\there", "new\nline", " lead", "trail ", "x" * 65])
def test_a_bad_server_name_is_one_line(monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    assert not is_server_name(bad)
    monkeypatch.setenv("BACKUPS_SERVER_NAME", bad)
    with pytest.raises(SettingsError) as refused:
        load_config()
    said = str(refused.value)
    assert said.startswith("BACKUPS_SERVER_NAME=") and "\n" not in said
    assert "expected 1 to 64 printable characters, no '/' or '\\', no spaces at either end" in said


def test_a_bad_heartbeat_url_is_refused_without_echoing_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACKUPS_HEARTBEAT_URL", "ftp://user:s3cret@example/ping")
    with pytest.raises(SettingsError) as refused:
        load_config()
    assert str(refused.value) == "BACKUPS_HEARTBEAT_URL is not accepted: expected an http:// or https:// URL"
    monkeypatch.setenv("BACKUPS_HEARTBEAT_URL", "https://hc-ping.com/0f1e")
    config = load_config()
    assert config.heartbeat_url is not None and config.heartbeat_url.get_secret_value() == "https://hc-ping.com/0f1e"
    assert "0f1e" not in repr(config)
