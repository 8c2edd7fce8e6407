"""Browser origins as BACKUPS_ALLOWED_ORIGINS names them."""

from __future__ import annotations

from urllib.parse import urlsplit


def parse_origin(value: str) -> str:
    """`value` as an origin (scheme://host[:port], lower case, no trailing slash), or ValueError."""
    text = value.strip().rstrip("/")
    if text == "*":
        return text
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path or parts.query or parts.fragment:
        raise ValueError(f"{value!r} is not an origin: write scheme://host[:port], e.g. http://localhost:5173")
    return f"{parts.scheme}://{parts.netloc}".lower()
