"""Include/exclude globs of a folder source: the pattern rules, compiled to regular expressions.

Globs match POSIX paths relative to the source's folder. A pattern without `/` matches a
name at any depth (`*.tmp`, `.git`); one with `/` is anchored at the folder (`logs/*.log`).
`*` and `?` stay within one path segment, `**` spans any number of segments, `[...]` is a
character class.
"""

from __future__ import annotations

import re


class GlobError(ValueError):
    """A pattern that cannot be used."""


def compile_glob(pattern: str) -> re.Pattern[str]:
    """The regular expression that a relative path must fully match."""
    text = pattern.strip().rstrip("/")
    if not text:
        raise GlobError(f"empty pattern {pattern!r}")
    if text.startswith("/") or "\\" in text or "\0" in text:
        raise GlobError(f"pattern {pattern!r} must be a relative POSIX path (no leading / or \\)")
    segments = text.split("/")
    if any(seg in ("", ".", "..") for seg in segments):
        raise GlobError(f"pattern {pattern!r} has an empty, '.' or '..' segment")
    parts: list[str] = [] if "/" in text else ["(?:.*/)?"]
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == "**":
            parts.append(".*" if last else "(?:[^/]*/)*")
        else:
            parts.append(_segment(segment, pattern) + ("" if last else "/"))
    try:
        return re.compile("".join(parts), re.DOTALL)
    except re.error as error:
        raise GlobError(f"pattern {pattern!r}: {error}") from None


def _segment(segment: str, pattern: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(segment):
        char = segment[i]
        if char == "*":
            while i + 1 < len(segment) and segment[i + 1] == "*":
                i += 1
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = segment.find("]", i + 2 if segment[i + 1 : i + 2] in ("!", "]") else i + 1)
            if end < 0:
                raise GlobError(f"pattern {pattern!r} has an unclosed '['")
            body = segment[i + 1 : end]
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out)
