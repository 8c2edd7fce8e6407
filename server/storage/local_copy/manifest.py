"""The local copy's `manifest.json`: limits, the rules every entry follows, encoding, parsing.

Shared by the writer and the reader so that a copy this server writes is always one it accepts.
Parsing trusts nothing: every key is type-checked and every path is checked before use.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from server.model.errors import InvalidArchive
from server.model.names import (
    MANIFEST_ID_RULE,
    SERVER_NAME_RULE,
    SOURCE_NAME_RULE,
    is_manifest_id,
    is_server_name,
    is_sha256,
    is_source_name,
)
from server.model.records import EntryKind, ManifestEntry, RestorePoint, RestorePointOrigin

FORMAT_NAME = "backups-local-copy"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
MAX_PATH_BYTES = 4096  # PATH_MAX on Linux; longer names cannot be restored anyway

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

_DRIVE_LETTER = re.compile(r"[A-Za-z]:")


@dataclass(frozen=True, slots=True)
class ArchiveLimits:
    """What an import accepts; anything beyond is refused as hostile before it is read."""

    max_entries: int = 100_000
    max_total_size: int = 16 * GiB
    max_entry_size: int = 8 * GiB
    max_ratio: float = 200.0  # uncompressed / compressed, per member
    ratio_floor: int = 1 * MiB  # members this small may compress any amount
    max_manifest_bytes: int = 32 * MiB
    max_directory_bytes: int = 64 * MiB  # the ZIP central directory, read whole into memory


@dataclass(frozen=True, slots=True)
class LocalCopyManifest:
    """A parsed, checked manifest.

    `restore_point` keeps the JSON keys (`id`, `label`, `note`, `origin`, `createdAt`,
    `createdBy`, `serverVersion`, `checksum`, `sizeBytes`, `itemCount`) with checked values;
    `createdAt` is an aware datetime and `origin` a RestorePointOrigin.
    """

    restore_point: dict[str, Any]
    entries: list[ManifestEntry]
    server_name: str | None = None  # the server that wrote the copy; None: a copy made before names

    @property
    def total_size(self) -> int:
        """Sum of the entries' sizes: the bytes a full verify or import reads."""
        return sum(entry.size for entry in self.entries)


class CopyCancelled(Exception):
    """`should_stop()` asked to stop; nothing was left behind."""


class ContentMismatch(Exception):
    """A blob's bytes differ from the entry that names it: the content store is damaged."""


# ---- rules shared by writer and reader ----------------------------------------------------


def member_name(entry: ManifestEntry) -> str:
    """The ZIP member name of an entry: `<source>/<path>`, with a trailing `/` for directories."""
    name = f"{entry.source}/{entry.path}"
    return name + "/" if entry.kind is EntryKind.DIRECTORY else name


def source_problem(source: str) -> str | None:
    """Why `source` is not a safe source name, or None."""
    if is_source_name(source):
        return None
    return f"has an unsafe source name {source!r} (allowed: {SOURCE_NAME_RULE})"


def path_problem(path: str) -> str | None:
    """Why `path` is not a safe relative POSIX path, or None."""
    if not path:
        return "has an empty path"
    if "\x00" in path:
        return "contains a NUL byte"
    if "\\" in path:
        return "contains a backslash"
    if path.startswith("/"):
        return "is an absolute path"
    if _DRIVE_LETTER.match(path):
        return "starts with a drive letter"
    segments = path.split("/")
    if ".." in segments:
        return "escapes its folder ('..')"
    if "." in segments:
        return "has a '.' segment"
    if "" in segments:
        return "has an empty path segment"
    try:
        encoded = path.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode"
    if len(encoded) > MAX_PATH_BYTES:
        return f"is longer than {MAX_PATH_BYTES} bytes"
    return None


def entry_problem(entry: ManifestEntry) -> str | None:
    """Why one entry breaks the format's rules, or None."""
    problem = source_problem(entry.source) or path_problem(entry.path)
    if problem:
        return problem
    if entry.size < 0:
        return f"has a negative size {entry.size}"
    if not 0 <= entry.mode <= 0o7777:
        return f"has mode {entry.mode:#o}, outside 0..0o7777 (permission bits only)"
    if entry.kind is EntryKind.DIRECTORY:
        if entry.sha256 is not None:
            return "is a DIRECTORY but has a sha256"
        if entry.size != 0:
            return f"is a DIRECTORY but has size {entry.size}"
        return None
    if entry.sha256 is None or not is_sha256(entry.sha256):
        return f"has a malformed sha256 {entry.sha256!r} (want 64 lowercase hex digits)"
    return None


def entries_problem(entries: Sequence[ManifestEntry]) -> str | None:
    """Why a list of entries cannot live in one copy (duplicates, content under a file), or None."""
    kinds: dict[tuple[str, str], EntryKind] = {}
    for entry in entries:
        key = (entry.source, entry.path)
        if key in kinds:
            return f"lists {_label(entry)!r} twice"
        kinds[key] = entry.kind
    for entry in entries:
        for parent in _parents(entry.path):
            kind = kinds.get((entry.source, parent))
            # Content under a symlink could be written through it, outside the source.
            if kind is not None and kind is not EntryKind.DIRECTORY:
                inside = f"{entry.source}/{parent}"
                return f"puts {_label(entry)!r} inside {inside!r}, which is a {kind}"
    return None


def limits_problem(entries: Sequence[ManifestEntry], limits: ArchiveLimits) -> str | None:
    """Why these entries exceed `limits`, or None."""
    if len(entries) > limits.max_entries:
        return f"has {len(entries)} entries, more than the limit of {limits.max_entries}"
    total = 0
    for entry in entries:
        if entry.size > limits.max_entry_size:
            return (
                f"says {_label(entry)!r} is {entry.size} bytes, "
                f"more than the limit of {limits.max_entry_size} per entry"
            )
        total += entry.size
    if total > limits.max_total_size:
        return f"adds up to {total} bytes, over the total size limit of {limits.max_total_size}"
    return None


def _parents(path: str) -> Iterable[str]:
    segments = path.split("/")
    for end in range(1, len(segments)):
        yield "/".join(segments[:end])


def _label(entry: ManifestEntry) -> str:
    return f"{entry.source}/{entry.path}"


# ---- encoding ------------------------------------------------------------------------------


def encode_manifest(
    restore_point: RestorePoint, entries: Sequence[ManifestEntry], *, server_name: str | None = None
) -> bytes:
    """The manifest.json bytes: an indented header and one compact line per entry. `serverName`
    (the server writing the copy) is left out when None, as copies made before it were."""
    head: dict[str, Any] = {
        "format": FORMAT_NAME,
        "formatVersion": FORMAT_VERSION,
        **({"serverName": server_name} if server_name is not None else {}),
        "restorePoint": {
            "id": restore_point.id,
            "label": restore_point.label,
            "note": restore_point.note,
            "origin": str(restore_point.origin),
            "createdAt": _iso(_aware(restore_point.created_at)),
            "createdBy": restore_point.created_by,
            "serverVersion": restore_point.server_version,
            "checksum": restore_point.checksum,
            "sizeBytes": restore_point.size_bytes,
            "itemCount": restore_point.item_count,
        },
    }
    # One entry per line keeps a 100,000-entry manifest small yet readable with `less`.
    lines = ",\n".join("    " + json.dumps(_entry_document(e), ensure_ascii=False) for e in entries)
    text = json.dumps(head, ensure_ascii=False, indent=2)[: -len("\n}")]
    text += ',\n  "entries": [\n' + lines + ("\n" if lines else "") + "  ]\n}\n"
    return text.encode("utf-8")


def _entry_document(entry: ManifestEntry) -> dict[str, Any]:
    return {
        "source": entry.source,
        "path": entry.path,
        "kind": str(entry.kind),
        "size": entry.size,
        "sha256": entry.sha256,
        "mode": entry.mode,
        "mtime": _iso(entry.mtime) if entry.mtime is not None else None,
    }


def _aware(when: datetime) -> datetime:
    # Databases such as SQLite hand back naive datetimes; the server stores UTC.
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _iso(when: datetime) -> str:
    return when.isoformat()


# ---- parsing -------------------------------------------------------------------------------


def decode_manifest(data: bytes, limits: ArchiveLimits) -> LocalCopyManifest:
    """Parse and check manifest.json; raises InvalidArchive naming the first problem."""
    document = _parse_json(data)
    if not isinstance(document, dict):
        raise _bad(f"the document must be a JSON object, got {_kind_of(document)}")
    _check_format(document)
    restore_point = _restore_point(_require(document, "restorePoint", "the document"))
    server_name = _server_name(document)
    raw_entries = _require(document, "entries", "the document")
    if not isinstance(raw_entries, list):
        raise _bad(f"'entries' must be a list, got {_kind_of(raw_entries)}")
    if len(raw_entries) > limits.max_entries:
        raise _bad(f"has {len(raw_entries)} entries, more than the limit of {limits.max_entries}")
    entries = [_entry(raw, index) for index, raw in enumerate(raw_entries)]
    problem = entries_problem(entries) or limits_problem(entries, limits)
    if problem:
        raise _bad(problem)
    return LocalCopyManifest(restore_point=restore_point, entries=entries, server_name=server_name)


def _server_name(document: dict[str, Any]) -> str | None:
    # Optional: copies written before servers had names have no such key (and still import).
    if document.get("serverName") is None:
        return None
    value = _string(document, "serverName", "the document")
    if not is_server_name(value):
        raise _bad(f"serverName {_show(value)} is not a server name ({SERVER_NAME_RULE})")
    return str(value)


def _parse_json(data: bytes) -> Any:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidArchive(f"manifest.json is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constant)
    except RecursionError:
        raise InvalidArchive("manifest.json is nested too deeply") from None
    except ValueError as exc:  # includes json.JSONDecodeError and oversized integers
        raise InvalidArchive(f"manifest.json is not valid JSON: {exc}") from None


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            # Two readers could pick different values for the same key: refuse the ambiguity.
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def _check_format(document: dict[str, Any]) -> None:
    fmt = _require(document, "format", "the document")
    if fmt != FORMAT_NAME:
        raise _bad(f"format {_show(fmt)} is not {FORMAT_NAME!r}: not a backups local copy")
    version = _require(document, "formatVersion", "the document")
    # `True == 1` and `1.0 == 1` in Python; only the integer 1 is version 1.
    if type(version) is not int or version != FORMAT_VERSION:
        raise _bad(f"unsupported formatVersion {_show(version)} (this server reads formatVersion {FORMAT_VERSION})")


def _restore_point(raw: Any) -> dict[str, Any]:
    where = "restorePoint"
    if not isinstance(raw, dict):
        raise _bad(f"'{where}' must be an object, got {_kind_of(raw)}")
    origin = _string(raw, "origin", where)
    if origin not in {member.value for member in RestorePointOrigin}:
        raise _bad(f"{where}.origin {_show(origin)} is not a known origin")
    checksum = _string(raw, "checksum", where)
    if not is_sha256(checksum):
        raise _bad(f"{where}.checksum {_show(checksum)} is not 64 lowercase hex digits")
    return {
        "id": _manifest_id(raw, where),
        "label": _string(raw, "label", where),
        "note": _string(raw, "note", where, nullable=True),
        "origin": RestorePointOrigin(origin),
        "createdAt": _timestamp(raw, "createdAt", where, aware=True),
        "createdBy": _string(raw, "createdBy", where, nullable=True),
        "serverVersion": _string(raw, "serverVersion", where),
        "checksum": checksum,
        "sizeBytes": _integer(raw, "sizeBytes", where),
        "itemCount": _integer(raw, "itemCount", where),
    }


def _manifest_id(raw: dict[str, Any], where: str) -> str:
    value = _string(raw, "id", where, non_empty=True)
    if not is_manifest_id(value):
        raise _bad(f"{where}.id {_show(value)} is not an id ({MANIFEST_ID_RULE})")
    return str(value)


def _entry(raw: Any, index: int) -> ManifestEntry:
    where = f"entries[{index}]"
    if not isinstance(raw, dict):
        raise _bad(f"{where} must be an object, got {_kind_of(raw)}")
    kind = _string(raw, "kind", where)
    if kind not in {member.value for member in EntryKind}:
        raise _bad(f"{where}.kind {_show(kind)} is not FILE, DIRECTORY or SYMLINK")
    entry = ManifestEntry(
        source=_string(raw, "source", where),
        path=_string(raw, "path", where),
        kind=EntryKind(kind),
        size=_integer(raw, "size", where, signed=True),  # the sign is checked with the rules
        sha256=_string(raw, "sha256", where, nullable=True),
        mode=_integer(raw, "mode", where),
        mtime=_timestamp(raw, "mtime", where, nullable=True),
    )
    problem = entry_problem(entry)
    if problem:
        raise _bad(f"entry {_label(entry)!r} {problem}")
    return entry


def _require(raw: dict[str, Any], key: str, where: str) -> Any:
    if key not in raw:
        raise _bad(f"{where} is missing the key {key!r}")
    return raw[key]


def _string(raw: dict[str, Any], key: str, where: str, *, nullable: bool = False, non_empty: bool = False) -> Any:
    value = _require(raw, key, where)
    if value is None and nullable:
        return None
    if not isinstance(value, str) or (non_empty and not value):
        wanted = "a non-empty string" if non_empty else "a string"
        wanted += " or null" if nullable else ""
        raise _bad(f"{where}.{key} must be {wanted}, got {_show(value)}")
    return value


def _integer(raw: dict[str, Any], key: str, where: str, *, signed: bool = False) -> int:
    value = _require(raw, key, where)
    # bool is a subclass of int; `"size": true` is a type error, not 1.
    if type(value) is not int or (value < 0 and not signed):
        raise _bad(f"{where}.{key} must be a non-negative integer, got {_show(value)}")
    return value


def _timestamp(
    raw: dict[str, Any], key: str, where: str, *, nullable: bool = False, aware: bool = False
) -> datetime | None:
    value = _string(raw, key, where, nullable=nullable)
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise _bad(f"{where}.{key} {_show(value)} is not an ISO 8601 date-time") from None
    if aware and when.tzinfo is None:
        raise _bad(f"{where}.{key} {_show(value)} has no time zone")
    return when


def _bad(problem: str) -> InvalidArchive:
    return InvalidArchive(f"manifest.json: {problem}")


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _kind_of(value: Any) -> str:
    kinds: dict[type, str] = {dict: "an object", list: "a list", str: "a string"}
    return kinds.get(type(value), _show(value))
