"""Every rule a name or an id must follow, in one place, each matched against the whole text.

`re.match` with a pattern ending in `$` accepts a trailing newline (`$` matches before a final
"\\n"), so a name checked that way could differ from every name that is looked up. Here each
pattern has no anchors and is only ever used through `fullmatch`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from server.model.errors import InvalidInput, quoted

SOURCE_NAME = re.compile(r"[a-z0-9_-]{1,64}")
SOURCE_NAME_RULE = "1 to 64 of a-z, 0-9, '_' and '-'"

MODULE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")

TOKEN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")

SCHEDULE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._ -]{0,63}")
SCHEDULE_NAME_RULE = "1 to 64 of A-Z, a-z, 0-9, '.', '_', '-' and spaces, starting with a letter or digit"

SHA256 = re.compile(r"[0-9a-f]{64}")

# Our ids: a type prefix (rp, op, tok, ...), then 24 hex digits (see ids.new_id).
_ID_BODY = re.compile(r"[0-9a-f]{24}")
OUR_RESTORE_POINT_ID = re.compile(r"rp_[0-9a-f]{24}")

# A local copy's id: `lc_` and the file name in unpadded URL-safe base64.
LOCAL_COPY_ID = re.compile(r"lc_[A-Za-z0-9_-]+")

# A restore point id as a local copy's manifest gives it (maybe from another server): printable
# ASCII without spaces, so that whatever it names can be typed, shown and looked up again.
MANIFEST_ID = re.compile(r"[\x21-\x7e]{1,128}")
MANIFEST_ID_RULE = "1 to 128 printable ASCII characters, no spaces"


# A server's name (BACKUPS_SERVER_NAME): shown in `system`, written into each copy's manifest and
# file name, labelled on /metrics. Printable (no control characters), no slashes, no blank ends.
SERVER_NAME_MAX = 64
SERVER_NAME_RULE = "1 to 64 printable characters, no '/' or '\\', no spaces at either end"


def is_server_name(value: str) -> bool:
    """Whether `value` may name this server."""
    return (
        0 < len(value) <= SERVER_NAME_MAX
        and value.isprintable()
        and "/" not in value
        and "\\" not in value
        and value == value.strip()
    )


def is_source_name(value: str) -> bool:
    """Whether `value` is a valid source name."""
    return SOURCE_NAME.fullmatch(value) is not None


def is_module_name(value: str) -> bool:
    """Whether `value` could name a settings module."""
    return MODULE_NAME.fullmatch(value) is not None


def is_token_name(value: str) -> bool:
    """Whether `value` is a valid API token name (the `tok_` rule is the caller's)."""
    return TOKEN_NAME.fullmatch(value) is not None


def is_schedule_name(value: str) -> bool:
    """Whether `value` is a valid schedule name."""
    return SCHEDULE_NAME.fullmatch(value) is not None and value == value.rstrip()


def is_sha256(value: str) -> bool:
    """64 lowercase hex digits."""
    return SHA256.fullmatch(value) is not None


def is_id(value: str, prefix: str) -> bool:
    """Whether `value` has the form of one of our ids with this prefix."""
    head = prefix + "_"
    return value.startswith(head) and _ID_BODY.fullmatch(value[len(head) :]) is not None


def is_our_restore_point_id(value: str) -> bool:
    """Whether `value` has the form of a restore point id this server gives out."""
    return OUR_RESTORE_POINT_ID.fullmatch(value) is not None


def is_local_copy_id_form(value: str) -> bool:
    """Whether `value` has the form of a local copy id (its name is checked by the folder)."""
    return LOCAL_COPY_ID.fullmatch(value) is not None


def is_manifest_id(value: str) -> bool:
    """Whether `value` is acceptable as a restore point id in a local copy's manifest."""
    return MANIFEST_ID.fullmatch(value) is not None


def each_once(names: Sequence[str], *, what: str, field: str) -> tuple[str, ...]:
    """The names, if none is given twice; INVALID_INPUT naming the first one repeated (one rule
    for every list of names an argument takes: copyToLocations, applyRestorePoint's sources, ...)."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InvalidInput(f"{what} {quoted(name)} is named twice: name each once", field=field)
        seen.add(name)
    return tuple(names)


# A copy's file name as this server writes it (a local copy, a copy at a folder location): at
# most this many bytes of UTF-8, which leaves room within a file system's 255 for the hidden
# temp name beside it (`.<name>.<random>.partial`) and for a `-N` that makes it unique.
COPY_NAME_MAX_BYTES = 200
_COPY_ENDINGS = (".zip.age", ".zip")
# Control and format characters (a newline, a right-to-left override), line and paragraph
# separators, and surrogates (bytes that are no UTF-8): never part of a name we write.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def safe_copy_name(name: str) -> str:
    """The file name a copy named `name` elsewhere (at a location, by hand) gets when written
    here: each unsafe character, `/` and `\\` replaced by `_`, no leading dot, and shortened in
    its stem to COPY_NAME_MAX_BYTES (UTF-8) so that its ending (.zip, .zip.age) stays. A name
    that is fine already is returned as it is."""
    safe = "".join("_" if ch in "/\\" or unicodedata.category(ch) in _UNSAFE_CATEGORIES else ch for ch in name)
    if safe.startswith("."):
        safe = "_" + safe[1:]
    ending = next((safe[-len(e) :] for e in _COPY_ENDINGS if safe.lower().endswith(e)), "")
    stem = safe[: len(safe) - len(ending)]
    room = COPY_NAME_MAX_BYTES - len(ending.encode())
    return (shorten_utf8(stem, room) or "copy") + ending


def shorten_utf8(text: str, max_bytes: int) -> str:
    """`text` cut to at most `max_bytes` of UTF-8, never inside a character."""
    return text.encode()[:max_bytes].decode("utf-8", "ignore")
