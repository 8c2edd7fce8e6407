"""The sources a config file declares, as the rest of the server takes them.

`[[sources]]` entries are parsed by the models in server/config/file_models.py; here each one
becomes a spec with what needs the machine: paths resolved against the config file's folder
(symlinks too), a database URL given our driver. The format: docs/configuration/sources.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from server.config.file_models import DatabaseEntry, FolderEntry, SettingsEntry, Source
from server.config.folder_overlap import resolve


class EntryProblem(Exception):
    """What is wrong with one entry once the machine is asked; the caller names the file and the entry."""


@dataclass(frozen=True, slots=True)
class SettingsSpec:
    name: str
    kind: str = "settings"


@dataclass(frozen=True, slots=True)
class FolderSourceSpec:
    name: str
    path: Path  # absolute
    include: tuple[str, ...] = ("**",)
    exclude: tuple[str, ...] = ()
    verify: str = "fast"  # "full": read every file on every restore point, trust no cache
    kind: str = "folder"  # also when the file says the older "directory"


@dataclass(frozen=True, slots=True)
class DatabaseSpec:
    name: str
    url: str  # with our driver: sqlite:///absolute/path or postgresql+psycopg://...
    tables: tuple[str, ...] | None = None  # None: every table
    schema: str | None = None  # PostgreSQL only; None: the connection's current schema
    kind: str = "database"


SourceSpec = SettingsSpec | FolderSourceSpec | DatabaseSpec

DEFAULT_SOURCES: tuple[SourceSpec, ...] = (SettingsSpec("settings"),)


def source_spec(entry: Source, base: Path) -> SourceSpec:
    """The spec of one parsed entry, its paths resolved against `base` (the config file's folder)."""
    if isinstance(entry, SettingsEntry):
        return SettingsSpec(entry.name)
    if isinstance(entry, FolderEntry):
        return _folder(entry, base)
    return _database(entry, base)


def _folder(entry: FolderEntry, base: Path) -> FolderSourceSpec:
    try:
        path = resolve(base / Path(entry.path).expanduser())
    except OSError:
        raise EntryProblem(f"path {entry.path} cannot be resolved: it is a symlink loop") from None
    if path.parent == path:
        raise EntryProblem("path cannot be the filesystem root (applying swaps the folder beside itself)")
    return FolderSourceSpec(
        name=entry.name,
        path=path,
        include=tuple(entry.include) if entry.include is not None else ("**",),
        exclude=tuple(entry.exclude or ()),
        verify=entry.verify,
    )


def _database(entry: DatabaseEntry, base: Path) -> DatabaseSpec:
    url = make_url(entry.url)  # checked by the model: SQLite with a file, or PostgreSQL
    if url.get_backend_name() == "sqlite":
        assert url.database is not None
        try:
            database = resolve(base / url.database)
        except OSError:
            raise EntryProblem(f"the SQLite file {url.database} cannot be resolved: it is a symlink loop") from None
        url = url.set(drivername="sqlite", database=str(database))
    else:
        url = url.set(drivername="postgresql+psycopg")
    return DatabaseSpec(
        name=entry.name,
        url=url.render_as_string(hide_password=False),
        tables=tuple(entry.tables) if entry.tables is not None else None,
        schema=entry.db_schema,
    )
