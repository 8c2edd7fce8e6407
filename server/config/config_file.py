"""The config file (TOML), read once: its sources, backup locations, recovery recipients and
notification targets.

Three steps: the text is parsed into the models of server/config/file_models.py (every rule
that needs only the file; an error worded by file_errors.py), each entry becomes a spec (server/config/sources_file.py,
locations_file.py, notifications_file.py: paths, credentials), and the folders are checked not to overlap. Anything
wrong is a ConfigError of one line naming the file, the entry and the problem, so the server
can refuse to start with it.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from server.config.file_errors import explain
from server.config.file_models import ConfigDocument, EncryptionPart, LocationEntry, NotificationEntry, SourceEntry
from server.config.folder_overlap import Folder, data_folder, describe, first_overlap, local_copies_folder
from server.config.locations_file import FolderLocationSpec, LocationSpec, location_spec
from server.config.notifications_file import NotificationSpec, TargetProblem, notification_spec
from server.config.sources_file import DEFAULT_SOURCES, EntryProblem, FolderSourceSpec, SourceSpec, source_spec

Model = TypeVar("Model", bound=BaseModel)
Entry = TypeVar("Entry", bound=SourceEntry | LocationEntry | NotificationEntry)
Spec = TypeVar("Spec")


class ConfigError(Exception):
    """A config file that cannot be used."""


@dataclass(frozen=True, slots=True)
class ConfigFile:
    """What the config file declares (without a file: the settings store alone)."""

    sources: tuple[SourceSpec, ...] = DEFAULT_SOURCES
    locations: tuple[LocationSpec, ...] = ()
    recipients: tuple[str, ...] = ()  # recovery recipients of encrypted copies (age1...)
    notifications: tuple[NotificationSpec, ...] = ()  # where to tell people what happened


def load_config_file(
    path: Path | None,
    *,
    data_dir: Path | None = None,
    local_copies_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> ConfigFile:
    """The config file at `path`, checked whole; its folders (and the data and local copies
    folders) checked not to overlap. `environ` holds the locations' credentials (os.environ)."""
    if path is None:
        _check_sources_overlap((), "", data_dir, local_copies_dir)
        return ConfigFile()
    where = f"config file {path}"
    document = _parse(path, ConfigDocument)
    env = os.environ if environ is None else environ
    sources = _specs(where, "source", document.sources, partial(source_spec, base=path.parent))
    _check_sources_overlap(sources, where, data_dir, local_copies_dir)
    locations = _specs(where, "location", document.locations, partial(location_spec, base=path.parent, env=env))
    _check_locations_overlap(locations, where, data_dir, local_copies_dir, sources)
    targets = _specs(where, "notification", document.notifications, partial(notification_spec, base=path.parent))
    return ConfigFile(sources, locations, tuple(document.encryption.recipients), targets)


def load_recovery_recipients(path: Path | None) -> tuple[str, ...]:
    """The recovery recipients alone, the rest of the file unchecked (`backups key` needs no source)."""
    if path is None:
        return ()
    return tuple(_parse(path, EncryptionPart).encryption.recipients)


def _parse(path: Path, model: type[Model]) -> Model:
    where = f"config file {path}"
    try:
        document: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"{where}: cannot be read: {error.strerror or error}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{where}: not valid TOML: {error}") from None
    try:
        return model.model_validate(document)
    except ValidationError as error:
        raise ConfigError(f"{where}: {explain(error, document)}") from None


def _specs(where: str, word: str, entries: Sequence[Entry], make: Callable[[Entry], Spec]) -> tuple[Spec, ...]:
    specs = []
    for entry in entries:
        try:
            specs.append(make(entry))
        except (EntryProblem, TargetProblem) as problem:
            raise ConfigError(f"{where}: {word} {entry.name!r}: {problem}") from None
    return tuple(specs)


def _check_sources_overlap(
    sources: Sequence[SourceSpec], where: str, data_dir: Path | None, local_copies_dir: Path | None
) -> None:
    """Source folders, the data folder and the local copies folder: no two may overlap."""
    try:
        folders = [Folder(f"source {s.name!r}", s.path) for s in sources if isinstance(s, FolderSourceSpec)]
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


def _check_locations_overlap(
    locations: Sequence[LocationSpec],
    where: str,
    data_dir: Path | None,
    local_copies_dir: Path | None,
    sources: Sequence[SourceSpec],
) -> None:
    """A folder location overlaps nothing else the server reads or writes (nor another location)."""
    mine = [Folder(f"location {s.name!r}", s.path) for s in locations if isinstance(s, FolderLocationSpec)]
    if not mine:
        return
    try:
        folders = list(mine)
        folders += [Folder(f"source {s.name!r}", s.path) for s in sources if isinstance(s, FolderSourceSpec)]
        if local_copies_dir is not None:  # before the data folder, which holds it: named first
            folders.append(local_copies_folder(local_copies_dir))
        if data_dir is not None:
            folders += data_folder(data_dir)
    except OSError as error:
        raise ConfigError(str(error)) from None
    found = first_overlap(folders)
    if found is not None and found[0].label.startswith("location "):
        raise ConfigError(f"{where}: {describe(*found)}")
