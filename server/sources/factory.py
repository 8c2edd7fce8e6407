"""Build the configured sources from their specs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from server.clock import SYSTEM_CLOCK, Clock
from server.config.sources_file import DatabaseSpec, FolderSourceSpec, SettingsSpec, SourceSpec
from server.sources.base import Source
from server.sources.database.source import DatabaseSource
from server.sources.folder.hash_cache import HashCache
from server.sources.folder.source import FolderSource
from server.sources.settings.source import SettingsSource
from server.storage.db.database import Database


def build_sources(
    specs: Sequence[SourceSpec],
    *,
    db: Database,
    data_dir: Path,
    local_copies_dir: Path | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> list[Source]:
    """One Source per spec; folder sources share the hash cache in the data folder, and
    refuse, at every use, a root that overlaps it or the local copies folder."""
    protected = [("the data folder", data_dir)]
    if local_copies_dir is not None:
        protected.append(("the local copies folder", local_copies_dir))
    cache = HashCache(data_dir / "hash-cache.sqlite3")
    sources: list[Source] = []
    for spec in specs:
        if isinstance(spec, SettingsSpec):
            sources.append(SettingsSource(db, name=spec.name))
        elif isinstance(spec, FolderSourceSpec):
            sources.append(
                FolderSource(
                    spec.name,
                    spec.path,
                    include=spec.include,
                    exclude=spec.exclude,
                    verify=spec.verify,
                    cache=cache,
                    protected=protected,
                    clock=clock,
                )
            )
        elif isinstance(spec, DatabaseSpec):
            sources.append(
                DatabaseSource(
                    spec.name,
                    spec.url,
                    tables=spec.tables,
                    schema=spec.schema,
                    spool_dir=data_dir / "spool",
                )
            )
    return sources
