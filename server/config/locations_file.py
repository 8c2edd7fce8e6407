"""Backup locations in the config file (`[[locations]]`, beside `[[sources]]`).

Kinds: `folder` (a mounted disk or share) and `s3` (S3-compatible object storage). The local
copies folder is the built-in location `local`, never declared. Parsing is strict like the
sources': an unknown key, a bad name or value is a ConfigError of one line naming the file,
the location and the problem. Credentials come from named environment variables or a file;
they are read here and kept in a SecretStr, so no message, log line or repr shows them.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import SecretStr

from server.config.folder_overlap import Folder, data_folder, describe, first_overlap, local_copies_folder, resolve
from server.config.sources_file import ConfigError, DirectorySpec, SourceSpec
from server.model.names import SOURCE_NAME_RULE, is_source_name

LOCAL = "local"  # the built-in location: the local copies folder
KEYS = {
    "folder": {"name", "kind", "path", "encrypt", "keepLast"},
    "s3": {
        "name",
        "kind",
        "encrypt",
        "keepLast",
        "endpoint",
        "region",
        "bucket",
        "prefix",
        "path_style",
        "ca_file",
        "access_key_id_env",
        "secret_access_key_env",
        "credentials_file",
    },
}
CREDENTIAL_KEYS = {"access_key_id", "secret_access_key"}
MAX_KEEP_LAST = 100_000


@dataclass(frozen=True, slots=True)
class FolderLocationSpec:
    name: str
    path: Path  # absolute, symlinks resolved
    kind: str = "folder"
    encrypt: bool = False  # a folder is usually a disk of one's own: plain unless asked
    keep_last: int | None = None  # schedules' copies kept there; None: no limit


@dataclass(frozen=True, slots=True)
class S3LocationSpec:
    name: str
    endpoint: str  # http(s)://host[:port]
    bucket: str
    access_key_id: SecretStr = field(repr=False)
    secret_access_key: SecretStr = field(repr=False)
    region: str = "us-east-1"
    prefix: str = ""  # "" or ending in "/"
    path_style: bool = True  # most S3-compatible stores want path-style addressing
    ca_file: Path | None = None
    kind: str = "s3"
    encrypt: bool = True  # a bucket is someone else's machine: encrypted unless opted out
    keep_last: int | None = None  # schedules' copies kept there; None: no limit


LocationSpec = FolderLocationSpec | S3LocationSpec


def load_locations(
    path: Path | None,
    *,
    data_dir: Path | None = None,
    local_copies_dir: Path | None = None,
    sources: Sequence[SourceSpec] = (),
    environ: Mapping[str, str] | None = None,
) -> tuple[LocationSpec, ...]:
    """The locations a config file declares (none without a file), each checked; a folder
    location may not overlap the data folder, the local copies folder or a source."""
    if path is None:
        return ()
    where = f"config file {path}"
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"{where}: cannot be read: {error.strerror or error}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{where}: not valid TOML: {error}") from None
    entries = document.get("locations", [])
    if not isinstance(entries, list):
        raise ConfigError(f"{where}: locations must be [[locations]] tables")
    env = os.environ if environ is None else environ
    specs = [_location(entry, index, where, path.parent, env) for index, entry in enumerate(entries)]
    seen: set[str] = set()
    for spec in specs:
        if spec.name in seen:
            raise ConfigError(f"{where}: location {spec.name!r}: the name is used twice")
        seen.add(spec.name)
    _check_folders(specs, where, data_dir, local_copies_dir, sources)
    return tuple(specs)


def _location(entry: Any, index: int, where: str, base: Path, env: Mapping[str, str]) -> LocationSpec:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: locations[{index}] is not a table")
    name = entry.get("name")
    label = f"location {name!r}" if isinstance(name, str) else f"locations[{index}]"

    def fail(problem: str) -> ConfigError:
        return ConfigError(f"{where}: {label}: {problem}")

    if not isinstance(name, str) or not is_source_name(name):
        raise fail(f"name must be {SOURCE_NAME_RULE}")
    if name == LOCAL:
        raise fail("the name 'local' is the built-in location (the local copies folder)")
    kind = entry.get("kind")
    if kind not in KEYS:
        raise fail(f"kind must be one of {', '.join(KEYS)} (got {kind!r})")
    unknown = sorted(set(entry) - KEYS[kind])
    if unknown:
        raise fail(f"unknown key {unknown[0]!r} for a {kind} location (allowed: {', '.join(sorted(KEYS[kind]))})")
    encrypt = entry.get("encrypt", kind == "s3")
    if not isinstance(encrypt, bool):
        raise fail("encrypt must be true or false")
    keep_last = entry.get("keepLast")
    if keep_last is not None and (
        not isinstance(keep_last, int) or isinstance(keep_last, bool) or not 1 <= keep_last <= MAX_KEEP_LAST
    ):
        raise fail(
            f"keepLast must be a whole number from 1 to {MAX_KEEP_LAST} (got {keep_last!r}); leave it out for no limit"
        )
    if kind == "folder":
        raw = entry.get("path")
        if not isinstance(raw, str) or not raw.strip():
            raise fail("a folder location needs a path")
        try:
            return FolderLocationSpec(
                name, resolve(base / Path(raw).expanduser()), encrypt=encrypt, keep_last=keep_last
            )
        except OSError:
            raise fail(f"path {raw} cannot be resolved: it is a symlink loop") from None
    return dataclasses.replace(_s3(name, entry, base, env, fail, encrypt), keep_last=keep_last)


def _s3(
    name: str,
    entry: dict[str, Any],
    base: Path,
    env: Mapping[str, str],
    fail: Callable[[str], ConfigError],
    encrypt: bool,
) -> S3LocationSpec:
    endpoint = entry.get("endpoint")
    if not isinstance(endpoint, str) or not endpoint.startswith(("http://", "https://")):
        raise fail("endpoint must be an http:// or https:// URL")
    if _has_userinfo(endpoint):  # the endpoint is shown in messages; the URL itself is not echoed
        raise fail(
            "endpoint must not hold a user or password (user:password@host): give the access key as "
            "access_key_id_env and secret_access_key_env, or in credentials_file"
        )
    bucket = entry.get("bucket")
    if not isinstance(bucket, str) or not 3 <= len(bucket) <= 63 or bucket != bucket.strip() or "/" in bucket:
        raise fail("bucket must be a bucket name (3 to 63 characters, no '/')")
    text = {key: entry.get(key, default) for key, default in (("region", "us-east-1"), ("prefix", ""))}
    for key, value in text.items():
        if not isinstance(value, str):
            raise fail(f"{key} must be a string")
    prefix = text["prefix"].strip("/")
    path_style = entry.get("path_style", True)
    if not isinstance(path_style, bool):
        raise fail("path_style must be true or false")
    ca_file = None
    if "ca_file" in entry:
        if not isinstance(entry["ca_file"], str) or not entry["ca_file"].strip():
            raise fail("ca_file must be the path of a PEM file")
        ca_file = (base / Path(entry["ca_file"]).expanduser()).resolve()
        if not ca_file.is_file():
            raise fail(f"ca_file {ca_file} is not a file")
    key_id, secret = _credentials(entry, base, env, fail)
    return S3LocationSpec(
        name=name,
        endpoint=endpoint.rstrip("/"),
        bucket=bucket,
        access_key_id=key_id,
        secret_access_key=secret,
        region=text["region"],
        prefix=f"{prefix}/" if prefix else "",
        path_style=path_style,
        ca_file=ca_file,
        encrypt=encrypt,
    )


def _has_userinfo(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return "@" in url
    return parts.username is not None or parts.password is not None or "@" in parts.netloc


def _credentials(
    entry: dict[str, Any], base: Path, env: Mapping[str, str], fail: Callable[[str], ConfigError]
) -> tuple[SecretStr, SecretStr]:
    """The key pair, from named environment variables or a TOML file; never echoed in a message."""
    by_env = "access_key_id_env" in entry or "secret_access_key_env" in entry
    if by_env == ("credentials_file" in entry):
        raise fail("give the credentials as access_key_id_env and secret_access_key_env, or as credentials_file")
    if by_env:
        values = []
        for key in ("access_key_id_env", "secret_access_key_env"):
            variable = entry.get(key)
            if not isinstance(variable, str) or not variable:
                raise fail(f"{key} must name an environment variable")
            if not env.get(variable):
                raise fail(f"the environment variable {variable} ({key}) is not set")
            values.append(SecretStr(env[variable]))
        return values[0], values[1]
    raw = entry["credentials_file"]
    if not isinstance(raw, str) or not raw.strip():
        raise fail("credentials_file must be a path")
    path = base / Path(raw).expanduser()
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise fail(f"credentials_file {path} cannot be read: {error.strerror or error}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        # The parser's message may quote the file's text, which is a secret: not shown.
        raise fail(
            f'credentials_file {path} is not valid TOML (access_key_id = "...", secret_access_key = "...")'
        ) from None
    if set(document) != CREDENTIAL_KEYS or not all(isinstance(v, str) and v for v in document.values()):
        raise fail(f"credentials_file {path} must hold exactly access_key_id and secret_access_key, as strings")
    return SecretStr(document["access_key_id"]), SecretStr(document["secret_access_key"])


def _check_folders(
    specs: Sequence[LocationSpec],
    where: str,
    data_dir: Path | None,
    local_copies_dir: Path | None,
    sources: Sequence[SourceSpec],
) -> None:
    """A folder location overlaps nothing else the server reads or writes (nor another location)."""
    mine = [Folder(f"location {spec.name!r}", spec.path) for spec in specs if isinstance(spec, FolderLocationSpec)]
    if not mine:
        return
    try:
        folders = list(mine)
        folders += [Folder(f"source {s.name!r}", s.path) for s in sources if isinstance(s, DirectorySpec)]
        if local_copies_dir is not None:  # before the data folder, which holds it: named first
            folders.append(local_copies_folder(local_copies_dir))
        if data_dir is not None:
            folders += data_folder(data_dir)
    except OSError as error:
        raise ConfigError(str(error)) from None
    found = first_overlap(folders)
    if found is not None and found[0].label.startswith("location "):
        raise ConfigError(f"{where}: {describe(*found)}")
