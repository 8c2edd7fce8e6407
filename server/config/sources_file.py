"""The sources config file (TOML): which sources a restore point captures.

Parsing is pure and strict: an unknown key, a bad name or a bad value is a ConfigError
whose message is one line naming the file, the source and the problem, so the server can
refuse to start with it. See README.md ("Sources") for the format.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from server.config.folder_overlap import Folder, data_folder, describe, first_overlap, local_copies_folder, resolve
from server.model.globs import GlobError, compile_glob
from server.model.names import SOURCE_NAME_RULE, is_source_name

VERIFY_MODES = ("fast", "full")
KEYS = {
    "settings": {"name", "kind"},
    "directory": {"name", "kind", "path", "include", "exclude", "verify"},
    "database": {"name", "kind", "url", "tables", "schema"},
}


class ConfigError(Exception):
    """A config file that cannot be used."""


Fail = Callable[[str], ConfigError]


@dataclass(frozen=True, slots=True)
class SettingsSpec:
    name: str
    kind: str = "settings"


@dataclass(frozen=True, slots=True)
class DirectorySpec:
    name: str
    path: Path  # absolute
    include: tuple[str, ...] = ("**",)
    exclude: tuple[str, ...] = ()
    verify: str = "fast"  # "full": read every file on every restore point, trust no cache
    kind: str = "directory"


@dataclass(frozen=True, slots=True)
class DatabaseSpec:
    name: str
    url: str  # with our driver: sqlite:///absolute/path or postgresql+psycopg://...
    tables: tuple[str, ...] | None = None  # None: every table
    schema: str | None = None  # PostgreSQL only; None: the connection's current schema
    kind: str = "database"


SourceSpec = SettingsSpec | DirectorySpec | DatabaseSpec

DEFAULT_SOURCES: tuple[SourceSpec, ...] = (SettingsSpec("settings"),)


def load_sources(
    path: Path | None, *, data_dir: Path | None = None, local_copies_dir: Path | None = None
) -> tuple[SourceSpec, ...]:
    """The sources a config file declares (the settings store alone when there is none),
    checked not to overlap each other, the data folder or the local copies folder."""
    if path is None:
        _check_folders([], "", data_dir, local_copies_dir)
        return DEFAULT_SOURCES
    where = f"config file {path}"
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"{where}: cannot be read: {error.strerror or error}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{where}: not valid TOML: {error}") from None
    # locations: server/config/locations_file.py; encryption: server/config/encryption_file.py
    extra = sorted(set(document) - {"sources", "locations", "encryption"})
    if extra:
        raise ConfigError(
            f"{where}: unknown top-level key {extra[0]!r} (allowed: [[sources]], [[locations]], [encryption])"
        )
    entries = document.get("sources")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{where}: declares no sources (add [[sources]] tables)")
    specs = [_source(entry, index, where, path.parent) for index, entry in enumerate(entries)]
    _check_together(specs, where)
    _check_folders(specs, where, data_dir, local_copies_dir)
    return tuple(specs)


def _source(entry: Any, index: int, where: str, base: Path) -> SourceSpec:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: sources[{index}] is not a table")
    name = entry.get("name")
    label = f"source {name!r}" if isinstance(name, str) else f"sources[{index}]"

    def fail(problem: str) -> ConfigError:
        return ConfigError(f"{where}: {label}: {problem}")

    if not isinstance(name, str) or not is_source_name(name):
        raise fail(f"name must be {SOURCE_NAME_RULE}")
    kind = entry.get("kind")
    if kind not in KEYS:
        raise fail(f"kind must be one of {', '.join(KEYS)} (got {kind!r})")
    unknown = sorted(set(entry) - KEYS[kind])
    if unknown:
        raise fail(f"unknown key {unknown[0]!r} for a {kind} source (allowed: {', '.join(sorted(KEYS[kind]))})")
    if kind == "settings":
        return SettingsSpec(name)
    if kind == "directory":
        return _directory(name, entry, base, fail)
    return _database(name, entry, base, fail)


def _directory(name: str, entry: dict[str, Any], base: Path, fail: Fail) -> DirectorySpec:
    raw = entry.get("path")
    if not isinstance(raw, str) or not raw.strip():
        raise fail("a directory source needs a path")
    try:
        path = resolve(base / Path(raw).expanduser())
    except OSError:
        raise fail(f"path {raw} cannot be resolved: it is a symlink loop") from None
    if path.parent == path:
        raise fail("path cannot be the filesystem root (applying swaps the folder beside itself)")
    patterns = {key: _strings(entry, key, fail) for key in ("include", "exclude")}
    for pattern in (*(patterns["include"] or ()), *(patterns["exclude"] or ())):
        try:
            compile_glob(pattern)
        except GlobError as error:
            raise fail(str(error)) from None
    verify = entry.get("verify", "fast")
    if verify not in VERIFY_MODES:
        raise fail(f'verify must be "fast" or "full" (got {verify!r})')
    return DirectorySpec(
        name=name,
        path=path,
        include=patterns["include"] if patterns["include"] is not None else ("**",),
        exclude=patterns["exclude"] or (),
        verify=verify,
    )


def _database(name: str, entry: dict[str, Any], base: Path, fail: Fail) -> DatabaseSpec:
    raw = entry.get("url")
    if not isinstance(raw, str) or not raw.strip():
        raise fail("a database source needs a url (sqlite:///file.db or postgresql://...)")
    try:
        url = make_url(raw.strip())
    except ArgumentError:
        raise fail("url is not a database URL (sqlite:///file.db or postgresql://...)") from None
    backend = url.get_backend_name()
    schema = entry.get("schema")
    if backend == "sqlite":
        if not url.database or url.database == ":memory:":
            raise fail("a SQLite url must name a database file (sqlite:///path/to/file.db)")
        if schema is not None:
            raise fail("schema applies to PostgreSQL only")
        try:
            database = resolve(base / url.database)
        except OSError:
            raise fail(f"the SQLite file {url.database} cannot be resolved: it is a symlink loop") from None
        url = url.set(drivername="sqlite", database=str(database))
    elif backend == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
        if schema is not None and (not isinstance(schema, str) or not schema):
            raise fail("schema must be a non-empty string")
    else:
        raise fail(f"unsupported database {backend!r}: use a SQLite file or PostgreSQL")
    tables = _strings(entry, "tables", fail)
    for table in tables or ():
        if not table or "/" in table or "\0" in table or table.startswith("."):
            raise fail(f"table name {table!r} cannot be a file name in a restore point")
    if tables is not None and not tables:
        raise fail("tables is empty: leave it out to capture every table")
    return DatabaseSpec(name=name, url=url.render_as_string(hide_password=False), tables=tables, schema=schema)


def _strings(entry: dict[str, Any], key: str, fail: Fail) -> tuple[str, ...] | None:
    value = entry.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise fail(f"{key} must be a list of strings")
    if len(set(value)) != len(value):
        raise fail(f"{key} lists the same value twice")
    return tuple(value)


def _check_together(specs: list[SourceSpec], where: str) -> None:
    seen: set[str] = set()
    for spec in specs:
        if spec.name in seen:
            raise ConfigError(f"{where}: source {spec.name!r}: the name is used twice")
        seen.add(spec.name)
    if sum(isinstance(spec, SettingsSpec) for spec in specs) > 1:
        raise ConfigError(f"{where}: only one settings source can be declared")


def _check_folders(specs: list[SourceSpec], where: str, data_dir: Path | None, local_copies_dir: Path | None) -> None:
    """Source folders, the data folder and the local copies folder: no two may overlap."""
    try:
        folders = [Folder(f"source {spec.name!r}", spec.path) for spec in specs if isinstance(spec, DirectorySpec)]
        if data_dir is not None:
            folders += data_folder(data_dir)
        if local_copies_dir is not None:
            folders.append(local_copies_folder(local_copies_dir))
    except OSError as error:  # the data or local copies folder is a symlink loop
        raise ConfigError(str(error)) from None
    found = first_overlap(folders)
    if found is None:
        return
    a, b, how = found
    # Blame the config file only when one of its sources is involved.
    prefix = f"{where}: " if where and a.label.startswith("source ") else ""
    raise ConfigError(prefix + describe(a, b, how))
