"""What changed inside one item, for people: the JSON paths of a settings module, a unified
diff of a text file (and of a database table file, whose rows are sorted by key, so its
line diff is row by row), sizes and hashes only for anything else.

Blocking: call it in a thread. Content is streamed: at most `text_limit` bytes of each side
are kept, the rest is read only to check the content's SHA-256 (a damaged blob is named,
never diffed as if it were right).
"""

from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from server.model.diffs.config_diff import Change, Opener
from server.model.errors import DomainError, OperationErrorCode
from server.model.records import EntryKind, ManifestEntry

CHUNK = 1024 * 1024
# A settings module is a small JSON document; a bigger one is shown as text, not walked.
MAX_SETTINGS_BYTES = 4 * 1024 * 1024
MAX_SETTING_CHANGES = 1000


class ContentDamaged(DomainError):
    code = OperationErrorCode.CONTENT_DAMAGED


@dataclass(frozen=True, slots=True)
class Limits:
    text_bytes: int  # each side of a text diff: a bigger file is diffed up to this, and flagged
    diff_bytes: int  # the unified diff itself is cut here, and flagged


@dataclass(frozen=True, slots=True)
class SettingChange:
    path: str
    before: Any
    after: Any
    before_present: bool = True
    after_present: bool = True


@dataclass(frozen=True, slots=True)
class ChangeContent:
    text_diff: str | None = None
    truncated: bool = False
    settings_changes: list[SettingChange] | None = None


class ChangedMeanwhile(DomainError):
    code = OperationErrorCode.SOURCE_CHANGED


def content_of(
    change: Change, source_kind: str, open_before: Opener, open_after: Opener, limits: Limits, *, before_live: bool
) -> ChangeContent:
    """The readable difference of one change (see the module's docstring); `before_live`:
    the before side is the running system's, not a restore point's."""
    before, after = change.before, change.after
    if any(e is not None and e.kind is EntryKind.DIRECTORY for e in (before, after)):
        return ChangeContent()  # a folder has no content (a link's is its target, shown as text)
    if before is not None and after is not None and before.sha256 == after.sha256:
        return ChangeContent()  # only the mode (or kind) changed: the entries say so
    old, old_cut = _read(before, open_before, limits.text_bytes, live=before_live)
    new, new_cut = _read(after, open_after, limits.text_bytes, live=False)
    if source_kind == "settings" and not old_cut and not new_cut:
        settings = _settings_changes(old, new)
        if settings is not None:
            cut = len(settings) > MAX_SETTING_CHANGES
            return ChangeContent(settings_changes=settings[:MAX_SETTING_CHANGES], truncated=cut)
    old_text, new_text = _text(old), _text(new)
    if old_text is None or new_text is None:
        return ChangeContent()  # binary: the entries' sizes and hashes say all there is
    context = 0 if source_kind == "database" else 3  # a table's rows need no neighbours
    lines = difflib.unified_diff(
        old_text.splitlines(keepends=True),
        new_text.splitlines(keepends=True),
        fromfile=f"a/{change.source}/{change.path}",
        tofile=f"b/{change.source}/{change.path}",
        n=context,
    )
    text, cut = _joined(lines, limits.diff_bytes)
    return ChangeContent(text_diff=text, truncated=cut or old_cut or new_cut)


def _read(entry: ManifestEntry | None, opener: Opener, limit: int, *, live: bool) -> tuple[bytes, bool]:
    """Up to `limit` bytes of the entry's content, and whether there was more; the whole
    content is hashed on the way, and must match the entry's SHA-256."""
    if entry is None or entry.sha256 is None:
        return b"", False
    hasher = hashlib.sha256()
    kept = bytearray()
    total = 0
    name = f"{entry.source}/{entry.path}"
    try:
        with opener(entry) as stream:
            while chunk := stream.read(CHUNK):
                hasher.update(chunk)
                total += len(chunk)
                if len(kept) < limit:
                    kept += chunk[: limit - len(kept)]
    except FileNotFoundError:
        if live:
            raise ChangedMeanwhile(
                f"{name} was removed while the preview was read: ask for the preview again"
            ) from None
        raise ContentDamaged(f"the content of {name} is missing from the content store") from None
    if hasher.hexdigest() != entry.sha256 or total != entry.size:
        if live:
            raise ChangedMeanwhile(f"{name} changed while the preview was read: ask for the preview again")
        raise ContentDamaged(f"the content of {name} does not match its SHA-256: it is damaged")
    return bytes(kept), total > limit


def _text(data: bytes) -> str | None:
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        if error.start >= len(data) - 3 and error.reason == "unexpected end of data":
            return data[: error.start].decode("utf-8")  # a character cut at the size limit
        return None


def _joined(lines: Any, limit: int) -> tuple[str, bool]:
    """The diff's lines up to `limit` bytes (whole lines only), and whether it was cut."""
    parts: list[str] = []
    size = 0
    for line in lines:
        if not line.endswith("\n"):
            line += "\n\\ No newline at end of file\n"
        size += len(line.encode())
        if size > limit:
            return "".join(parts), True
        parts.append(line)
    return "".join(parts), False


def _settings_changes(old: bytes, new: bytes) -> list[SettingChange] | None:
    """The changed JSON paths of a settings module; None when a side is no JSON object."""
    if len(old) > MAX_SETTINGS_BYTES or len(new) > MAX_SETTINGS_BYTES:
        return None
    try:
        before = json.loads(old) if old else {}
        after = json.loads(new) if new else {}
    except ValueError:
        return None
    if not isinstance(before, dict) or not isinstance(after, dict):
        return None
    found: list[SettingChange] = []
    _walk("", before, after, found)
    return found


_MISSING = object()


def _walk(prefix: str, before: Any, after: Any, found: list[SettingChange]) -> None:
    if isinstance(before, dict) and isinstance(after, dict):
        for key in sorted(before.keys() | after.keys()):
            _walk(f"{prefix}/{_escape(key)}", before.get(key, _MISSING), after.get(key, _MISSING), found)
        return
    if before == after and type(before) is type(after):
        return
    found.append(
        SettingChange(
            path=prefix,
            before=None if before is _MISSING else before,
            after=None if after is _MISSING else after,
            before_present=before is not _MISSING,
            after_present=after is not _MISSING,
        )
    )


def _escape(key: str) -> str:
    """A key as one JSON Pointer (RFC 6901) token."""
    return key.replace("~", "~0").replace("/", "~1")
