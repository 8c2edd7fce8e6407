"""The backup locations a config file declares (`[[locations]]`), as the rest of the server takes them.

Kinds: `folder` (a mounted disk or share) and `s3` (S3-compatible object storage). The local
copies folder is the built-in location `local`, never declared. Entries are parsed by the models
in server/config/file_models.py; here each one becomes a spec with what needs the machine: a
resolved path, the CA file checked, and the credentials read from the named environment
variables or file into a SecretStr, so no message, log line or repr shows them.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr

from server.config.file_models import FolderLocationEntry, Location, S3LocationEntry
from server.config.folder_overlap import resolve
from server.config.sources_file import EntryProblem

CREDENTIAL_KEYS = {"access_key_id", "secret_access_key"}


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


def location_spec(entry: Location, base: Path, env: Mapping[str, str]) -> LocationSpec:
    """The spec of one parsed entry: paths resolved against `base` (the config file's folder),
    credentials read from `env` or their file."""
    if isinstance(entry, FolderLocationEntry):
        try:
            path = resolve(base / Path(entry.path).expanduser())
        except OSError:
            raise EntryProblem(f"path {entry.path} cannot be resolved: it is a symlink loop") from None
        return FolderLocationSpec(entry.name, path, encrypt=entry.encrypt, keep_last=entry.keep_last)
    ca_file = None
    if entry.ca_file is not None:
        ca_file = (base / Path(entry.ca_file).expanduser()).resolve()
        if not ca_file.is_file():
            raise EntryProblem(f"ca_file {ca_file} is not a file")
    key_id, secret = _credentials(entry, base, env)
    prefix = entry.prefix.strip("/")
    return S3LocationSpec(
        name=entry.name,
        endpoint=entry.endpoint.rstrip("/"),
        bucket=entry.bucket,
        access_key_id=key_id,
        secret_access_key=secret,
        region=entry.region,
        prefix=f"{prefix}/" if prefix else "",
        path_style=entry.path_style,
        ca_file=ca_file,
        encrypt=entry.encrypt,
        keep_last=entry.keep_last,
    )


def _credentials(entry: S3LocationEntry, base: Path, env: Mapping[str, str]) -> tuple[SecretStr, SecretStr]:
    """The key pair, from named environment variables or a TOML file; never echoed in a message."""
    if entry.credentials_file is None:  # the model holds both variable names then
        values = []
        for key, variable in (
            ("access_key_id_env", entry.access_key_id_env),
            ("secret_access_key_env", entry.secret_access_key_env),
        ):
            if not variable or not env.get(variable):
                raise EntryProblem(f"the environment variable {variable} ({key}) is not set")
            values.append(SecretStr(env[variable]))
        return values[0], values[1]
    path = base / Path(entry.credentials_file).expanduser()
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise EntryProblem(f"credentials_file {path} cannot be read: {error.strerror or error}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        # The parser's message may quote the file's text, which is a secret: not shown.
        raise EntryProblem(
            f'credentials_file {path} is not valid TOML (access_key_id = "...", secret_access_key = "...")'
        ) from None
    if set(document) != CREDENTIAL_KEYS or not all(isinstance(v, str) and v for v in document.values()):
        raise EntryProblem(f"credentials_file {path} must hold exactly access_key_id and secret_access_key, as strings")
    return SecretStr(document["access_key_id"]), SecretStr(document["secret_access_key"])
