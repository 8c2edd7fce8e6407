"""Putting a workload into a server: the small config through the settings store, a tree as
a folder source (where the server has them)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from bench import api
from bench.servers import RUNS
from bench.workloads import small_config

UPDATE = "mutation($m: String!, $v: JSON!) { updateSettings(module: $m, values: $v) { userErrors { message } } }"


def load_small_config(server: object) -> None:
    """Merge the small config's modules into the seeded settings store, as a client would."""
    for name, settings in small_config().items():
        api.graphql(server, UPDATE, m=name, v=settings)


def has_folder_sources() -> bool:
    return importlib.util.find_spec("server.sources.folder.source") is not None


def tree_server_env(name: str, root: Path) -> dict[str, str] | None:
    """Server environment whose only source is the folder `root`; None if unsupported."""
    if not has_folder_sources():
        return None
    RUNS.mkdir(parents=True, exist_ok=True)
    config = RUNS / f"{name}-sources.toml"
    config.write_text(f'[[sources]]\nname = "site"\nkind = "directory"\npath = "{root}"\n')
    return {"BACKUPS_CONFIG": str(config)}
