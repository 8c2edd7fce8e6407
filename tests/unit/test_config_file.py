"""The sources config file: a full example parses; every bad one names file, source, problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.sources.config_file import (
    DEFAULT_SOURCES,
    ConfigError,
    DatabaseSpec,
    DirectorySpec,
    SettingsSpec,
    load_sources,
)

FULL = """
[[sources]]
name = "settings"
kind = "settings"

[[sources]]
name = "media-config"
kind = "directory"
path = "conf"
include = ["**"]
exclude = ["*.tmp", "cache"]
verify = "full"

[[sources]]
name = "app_db"
kind = "database"
url = "postgresql://backup:secret@db.local:5432/media"
schema = "public"
tables = ["displays", "schedules"]

[[sources]]
name = "local-db"
kind = "database"
url = "sqlite:///state/app.db"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "backups.toml"
    path.write_text(text)
    return path


def test_no_file_means_the_settings_store_alone() -> None:
    assert load_sources(None) == DEFAULT_SOURCES


def test_full_example(tmp_path: Path) -> None:
    specs = load_sources(write(tmp_path, FULL), data_dir=tmp_path / "data")
    assert specs == (
        SettingsSpec("settings"),
        DirectorySpec("media-config", tmp_path / "conf", ("**",), ("*.tmp", "cache"), "full"),
        DatabaseSpec(
            "app_db", "postgresql+psycopg://backup:secret@db.local:5432/media",
            ("displays", "schedules"), "public",
        ),
        DatabaseSpec("local-db", f"sqlite:///{tmp_path / 'state' / 'app.db'}"),
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[[sources]]\nname = 'a'\nkind = 'settings'\n[[sources]]\nname = 'a'\nkind = 'settings'",
         "source 'a': the name is used twice"),
        ("[[sources]]\nname = 'Bad Name'\nkind = 'settings'", "source 'Bad Name': name must be"),
        ("[[sources]]\nname = 'x'\nkind = 'folder'", "source 'x': kind must be one of"),
        ("[[sources]]\nname = 'x'\nkind = 'directory'", "source 'x': a directory source needs a path"),
        ("[[sources]]\nname = 'x'\nkind = 'directory'\npath = '/srv'\nexlude = []",
         "source 'x': unknown key 'exlude'"),
        ("[[sources]]\nname = 'x'\nkind = 'directory'\npath = '/srv'\nexclude = ['../up']",
         "source 'x': pattern '../up'"),
        ("[[sources]]\nname = 'x'\nkind = 'directory'\npath = '/srv'\nverify = 'sometimes'",
         "source 'x': verify must be"),
        ("[[sources]]\nname = 'x'\nkind = 'directory'\npath = '/'", "source 'x': path cannot be the filesystem root"),
        ("[[sources]]\nname = 'x'\nkind = 'database'\nurl = 'mysql://h/db'", "source 'x': unsupported database 'mysql'"),
        ("[[sources]]\nname = 'x'\nkind = 'database'\nurl = 'not a url'", "source 'x': url is not a database URL"),
        ("[[sources]]\nname = 'x'\nkind = 'database'\nurl = 'sqlite://'", "source 'x': a SQLite url must name"),
        ("[[sources]]\nname = 'x'\nkind = 'database'\nurl = 'sqlite:///a.db'\ntables = 'users'",
         "source 'x': tables must be a list of strings"),
        ("[[sources]]\nname = 'x'\nkind = 'database'\nurl = 'sqlite:///a.db'\ntables = ['../u']",
         "source 'x': table name '../u'"),
        ("[[sources]]\nkind = 'settings'", "sources[0]: name must be"),
        ("[[sources]]\nname = 's1'\nkind = 'settings'\n[[sources]]\nname = 's2'\nkind = 'settings'",
         "only one settings source"),
        ("sources = []", "declares no sources"),
        ("[server]\nport = 1", "unknown top-level key 'server'"),
        ("[[sources]\nname = ", "not valid TOML"),
        (
            "[[sources]]\nname = 'a'\nkind = 'directory'\npath = '/srv/x'\n"
            + "[[sources]]\nname = 'b'\nkind = 'directory'\npath = '/srv/x/y'",
            "source 'a': path /srv/x overlaps source 'b'",
        ),
    ],
)
def test_bad_config_names_file_source_and_problem(tmp_path: Path, body: str, message: str) -> None:
    path = write(tmp_path, body)
    with pytest.raises(ConfigError) as raised:
        load_sources(path)
    text = str(raised.value)
    assert text.startswith(f"config file {path}: "), text
    assert message in text, text
    assert "\n" not in text


def test_a_folder_overlapping_the_data_folder_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, f"[[sources]]\nname = 'all'\nkind = 'directory'\npath = '{tmp_path}'")
    with pytest.raises(ConfigError, match="overlaps the data folder"):
        load_sources(path, data_dir=tmp_path / "data")


def test_a_missing_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope.toml: cannot be read: No such file"):
        load_sources(tmp_path / "nope.toml")
