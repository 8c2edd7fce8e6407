"""Which browser origins may use the API (BACKUPS_ALLOWED_ORIGINS): CORS for HTTP.

CORS does not cover websockets: a browser opens one from any page. Strawberry's view checks the
handshake's Origin (same origin, or listed) against the same list, refusing others with 403."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

from server.config.origins import parse_origin

# What a page may send and read: the token header, JSON and multipart bodies, and the
# headers of a download (its name, size, range and validator) and of a refusal.
ALLOWED_HEADERS = ["Authorization", "Content-Type", "Range", "If-None-Match", "If-Range"]
EXPOSED_HEADERS = [
    "Content-Disposition",
    "Content-Length",
    "Content-Range",
    "Accept-Ranges",
    "ETag",
    "WWW-Authenticate",
]


def cors_middleware(allowed_origins: Sequence[str]) -> list[Middleware]:
    """Starlette's CORS middleware for the listed origins; none when the list is empty (same origin only)."""
    if not allowed_origins:
        return []
    return [
        Middleware(
            CORSMiddleware,
            allow_origins=list(allowed_origins),
            allow_methods=["GET", "HEAD", "POST", "OPTIONS"],
            allow_headers=ALLOWED_HEADERS,
            expose_headers=EXPOSED_HEADERS,
            # Tokens travel in the Authorization header, not cookies; allowing credentials
            # lets a page that sends `credentials: "include"` (some clients do) work too.
            allow_credentials=True,
            max_age=600,
        )
    ]


def websocket_origins(allowed_origins: Sequence[str], public_url: str | None) -> list[str]:
    """The origins whose pages may open a websocket: the listed ones, and the public URL's own
    (behind a proxy the Host header may not say it is the same origin)."""
    try:
        parts = urlsplit(public_url or "")
        public = [parse_origin(f"{parts.scheme}://{parts.netloc}")]
    except ValueError:  # unset, or not a URL: links say what is wrong with it, not this
        public = []
    return [*allowed_origins, *public]
