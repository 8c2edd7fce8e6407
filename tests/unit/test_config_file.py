"""The sources config file: a full example parses; every bad one names file, source, problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.config.config_file import ConfigError, load_config_file
from server.config.sources_file import DEFAULT_SOURCES, DatabaseSpec, FolderSourceSpec, SettingsSpec

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
    assert load_config_file(None).sources == DEFAULT_SOURCES


def test_full_example(tmp_path: Path) -> None:
    specs = load_config_file(write(tmp_path, FULL), data_dir=tmp_path / "data").sources
    assert specs == (
        SettingsSpec("settings"),
        FolderSourceSpec("media-config", tmp_path / "conf", ("**",), ("*.tmp", "cache"), "full"),
        DatabaseSpec(
            "app_db",
            "postgresql+psycopg://backup:secret@db.local:5432/media",
            ("displays", "schedules"),
            "public",
        ),
        DatabaseSpec("local-db", f"sqlite:///{tmp_path / 'state' / 'app.db'}"),
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "[[sources]]\nname = 'a'\nkind = 'settings'\n[[sources]]\nname = 'a'\nkind = 'settings'",
            "source 'a': the name is used twice",
        ),
        ("[[sources]]\nname = 'Bad Name'\nkind = 'settings'", "source 'Bad Name': name must be"),
        ("[[sources]]\nname = 'x'\nkind = 'tape'", "source 'x': kind must be one of"),
        ("[[sources]]\nname = 'x'\nkind = 'directory'", "source 'x': a directory source needs a path"),
        ("[[sources]]\nname = 'x'\nkind = 'directory'\npath = '/srv'\nexlude = []", "source 'x': unknown key 'exlude'"),
        (
            "[[sources]]\nname = 'x'\nkind = 'directory'\npath = '/srv'\nexclude = ['../up']",
            "source 'x': pattern '../up'",
        ),
        (
            "[[sources]]\nname = 'x'\nkind = 'directory'\npath = '/srv'\nverify = 'sometimes'",
            "source 'x': verify must be",
        ),
        ("[[sources]]\nname = 'x'\nkind = 'directory'\npath = '/'", "source 'x': path cannot be the filesystem root"),
        (
            "[[sources]]\nname = 'x'\nkind = 'database'\nurl = 'mysql://h/db'",
            "source 'x': unsupported database 'mysql'",
        ),
        ("[[sources]]\nname = 'x'\nkind = 'database'\nurl = 'not a url'", "source 'x': url is not a database URL"),
        ("[[sources]]\nname = 'x'\nkind = 'database'\nurl = 'sqlite://'", "source 'x': a SQLite url must name"),
        (
            "[[sources]]\nname = 'x'\nkind = 'database'\nurl = 'sqlite:///a.db'\ntables = 'users'",
            "source 'x': tables must be a list of strings",
        ),
        (
            "[[sources]]\nname = 'x'\nkind = 'database'\nurl = 'sqlite:///a.db'\ntables = ['../u']",
            "source 'x': table name '../u'",
        ),
        ("[[sources]]\nkind = 'settings'", "sources[0]: name must be"),
        (
            "[[sources]]\nname = 's1'\nkind = 'settings'\n[[sources]]\nname = 's2'\nkind = 'settings'",
            "only one settings source",
        ),
        ("sources = []", "declares no sources"),
        ("[server]\nport = 1", "unknown top-level key 'server'"),
        ("[[sources]\nname = ", "not valid TOML"),
        (
            "[[sources]]\nname = 'a'\nkind = 'directory'\npath = '/srv/x'\n"
            + "[[sources]]\nname = 'b'\nkind = 'directory'\npath = '/srv/x/y'",
            "source 'a' (/srv/x) contains source 'b' (/srv/x/y): the folders must not overlap",
        ),
    ],
)
def test_bad_config_names_file_source_and_problem(tmp_path: Path, body: str, message: str) -> None:
    path = write(tmp_path, body)
    with pytest.raises(ConfigError) as raised:
        load_config_file(path)
    text = str(raised.value)
    assert text.startswith(f"config file {path}: "), text
    assert message in text, text
    assert "\n" not in text


# (source path or no config file, local copies folder) relative to tmp_path, the data folder at "data";
# the line expected, with "<t>" for tmp_path.
OVERLAPS = [
    (".", None, "source 'site' (<t>) contains the data folder (<t>/data)"),
    ("data", None, "source 'site' (<t>/data) is the same folder as the data folder (<t>/data)"),
    ("data/inner", None, "source 'site' (<t>/data/inner) is inside the data folder (<t>/data)"),
    ("site", "site/local", "source 'site' (<t>/site) contains the local copies folder (<t>/site/local)"),
    ("site", "site", "source 'site' (<t>/site) is the same folder as the local copies folder (<t>/site)"),
    ("site/inner", "site", "source 'site' (<t>/site/inner) is inside the local copies folder (<t>/site)"),
    (
        "site",
        "data/blobs",
        "the content store (<t>/data/blobs) is the same folder as the local copies folder (<t>/data/blobs)",
    ),
    ("site", "data/blobs/x", "the content store (<t>/data/blobs) contains the local copies folder (<t>/data/blobs/x)"),
    (None, "data", "the data folder (<t>/data) is the same folder as the local copies folder (<t>/data)"),
    (None, ".", "the data folder (<t>/data) is inside the local copies folder (<t>)"),
]


@pytest.mark.parametrize(("source", "copies", "line"), OVERLAPS)
def test_every_overlap_of_sources_data_and_local_copies_is_refused(
    tmp_path: Path, source: str | None, copies: str | None, line: str
) -> None:
    body = f"[[sources]]\nname = 'site'\nkind = 'directory'\npath = '{tmp_path / source}'" if source else ""
    path = write(tmp_path, body) if source else None
    local_copies = tmp_path / copies if copies is not None else None
    with pytest.raises(ConfigError) as raised:
        load_config_file(path, data_dir=tmp_path / "data", local_copies_dir=local_copies)
    text = str(raised.value)
    expected = line.replace("<t>", str(tmp_path.resolve())) + ": the folders must not overlap"
    # Blamed on the config file only when one of its sources is involved.
    assert text == (f"config file {path}: {expected}" if line.startswith("source") else expected)


def test_overlaps_are_found_after_resolving_symlinks(tmp_path: Path) -> None:
    (tmp_path / "site").mkdir()
    (tmp_path / "copies-link").symlink_to(tmp_path / "site")
    path = write(tmp_path, f"[[sources]]\nname = 'site'\nkind = 'directory'\npath = '{tmp_path / 'site'}'")
    with pytest.raises(ConfigError, match=r"is the same folder as the local copies folder"):
        load_config_file(path, data_dir=tmp_path / "data", local_copies_dir=tmp_path / "copies-link")


def test_the_default_layout_and_separate_folders_are_accepted(tmp_path: Path) -> None:
    path = write(tmp_path, f"[[sources]]\nname = 'site'\nkind = 'directory'\npath = '{tmp_path / 'site'}'")
    for copies in (tmp_path / "data" / "local-copies", tmp_path / "copies", tmp_path / "site-copies"):
        assert load_config_file(path, data_dir=tmp_path / "data", local_copies_dir=copies).sources[0].name == "site"
    assert (
        load_config_file(None, data_dir=tmp_path / "data", local_copies_dir=tmp_path / "data" / "lc").sources
        == DEFAULT_SOURCES
    )


def test_a_symlink_loop_is_one_line_naming_file_source_and_problem(tmp_path: Path) -> None:
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    path = write(tmp_path, f"[[sources]]\nname = 'site'\nkind = 'directory'\npath = '{tmp_path / 'loop' / 'x'}'")
    with pytest.raises(ConfigError) as raised:
        load_config_file(path, data_dir=tmp_path / "data")
    assert str(raised.value) == (
        f"config file {path}: source 'site': path {tmp_path / 'loop' / 'x'} cannot be resolved: it is a symlink loop"
    )
    db = write(tmp_path, f"[[sources]]\nname = 'db'\nkind = 'database'\nurl = 'sqlite:///{tmp_path / 'loop'}'")
    with pytest.raises(
        ConfigError, match=r"source 'db': the SQLite file .*loop cannot be resolved: it is a symlink loop$"
    ):
        load_config_file(db)


def test_a_missing_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope.toml: cannot be read: No such file"):
        load_config_file(tmp_path / "nope.toml")


def test_folder_is_the_word_for_a_folder_source_and_directory_is_still_accepted(tmp_path: Path) -> None:
    """Issue 24 item 2: `kind = "folder"`, as for a folder location; files saying "directory"
    keep working, and both give the rest of the server the same spec, kind "folder"."""
    specs = {
        word: load_config_file(write(tmp_path, f"[[sources]]\nname = 'site'\nkind = '{word}'\npath = 'site'")).sources
        for word in ("folder", "directory")
    }
    assert specs["folder"] == specs["directory"] == (FolderSourceSpec("site", tmp_path / "site"),)
    assert specs["folder"][0].kind == "folder"


@pytest.mark.parametrize("word", ["folder", "directory"])
def test_a_message_about_a_folder_source_uses_the_word_the_file_used(tmp_path: Path, word: str) -> None:
    path = write(tmp_path, f"[[sources]]\nname = 'x'\nkind = '{word}'")
    with pytest.raises(ConfigError, match=rf"source 'x': a {word} source needs a path$"):
        load_config_file(path)
    path = write(tmp_path, f"[[sources]]\nname = 'x'\nkind = '{word}'\npath = '/srv'\nexlude = []")
    with pytest.raises(ConfigError, match=rf"unknown key 'exlude' for a {word} source \(allowed: exclude, include,"):
        load_config_file(path)
