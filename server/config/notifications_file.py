"""The config file's `[[notifications]]` targets: each an Apprise URL (or a file holding one),
checked at start by Apprise itself, and shown only with its secrets masked.

Apprise's own log lines may hold a URL's secrets (an unparseable URL is logged whole), so they
never reach the server's log: delivery (server/services/notifications/) reports what went wrong
itself, masked. The format: docs/notifications.md.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import apprise

from server.model.notifications import NotificationEvent
from server.model.url_credentials import mask_url_credentials

if TYPE_CHECKING:
    from server.config.file_models import NotificationEntry

APPRISE_LOG = logging.getLogger("apprise")
APPRISE_LOG.propagate = False  # never to the server's log: a line may hold a URL's secrets
MASK = "****"
EVENT_NAMES = ", ".join(NotificationEvent)
# Query keys whose values are secrets, whatever the service: headers (+), payload (-, :) and
# anything that sounds like a credential.
_SECRET_KEY = re.compile(r"^[+\-:]|token|key|secret|pass|auth|sig|cred", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class NotificationSpec:
    """A target ready to send to: its URL (a secret, never shown) and the same with secrets masked."""

    name: str
    url: str = field(repr=False)
    masked_url: str
    events: tuple[NotificationEvent, ...]
    secrets: tuple[str, ...] = field(default=(), repr=False)  # the parts of the URL masked when shown

    def scrub(self, text: str) -> str:
        """The text with every secret of the URL (and any URL's user and password) masked."""
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return mask_url_credentials(text)


class TargetProblem(Exception):
    """A target's URL file cannot be used (one line, without the URL)."""


def notification_spec(entry: NotificationEntry, *, base: Path) -> NotificationSpec:
    """The target of an entry, its URL read from its file if it has one (TargetProblem if unusable)."""
    url = entry.url
    if url is None:
        path = Path(str(entry.url_file)).expanduser()
        path = path if path.is_absolute() else base / path
        try:
            url = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
            raise TargetProblem(f"url_file {str(path)!r} cannot be read: {reason}") from None
        if parse_apprise_url(url) is None:
            raise TargetProblem(
                f"url_file {str(path)!r} does not hold an Apprise URL that can be used ({url_scheme(url)}...)"
            )
    shown = masked_url(url)
    events = tuple(NotificationEvent(event) for event in entry.events)
    return NotificationSpec(entry.name, url, shown, events, secret_parts(url, shown))


def secret_parts(url: str, shown: str) -> tuple[str, ...]:
    """The pieces of the URL that its masked form leaves out (passwords, tokens), longest first,
    each also as it is percent-encoded in the URL."""
    rest = url.partition("://")[2]
    pieces = set(re.split(r"[/:@?&=,]+", rest)) | set(re.split(r"[/:@?&=,]+", unquote(rest)))
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    if password:
        pieces |= {password, unquote(password)}
    kept = set(re.split(r"[/:@?&=,]+", unquote(shown)))
    secrets = {piece for piece in pieces if len(piece) >= 3 and piece not in kept and piece != MASK}
    return tuple(sorted(secrets, key=len, reverse=True))


def parse_apprise_url(url: str) -> apprise.plugins.NotifyBase | None:
    """Apprise's plugin for the URL, or None when Apprise cannot use it."""
    if not url or any(character.isspace() for character in url):
        return None
    plugin = apprise.Apprise.instantiate(url)
    return plugin if isinstance(plugin, apprise.plugins.NotifyBase) else None


def url_scheme(url: str) -> str:
    """What of a refused URL may be shown: its scheme only (the rest may be a secret)."""
    scheme = url.strip().split("://", 1)[0] if "://" in url else ""
    return f"{scheme}://" if re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]{0,20}", scheme) else "not a URL"


def masked_url(url: str) -> str:
    """The URL as Apprise shows it in privacy mode (passwords and tokens masked), with only
    the query keys the user gave, and the values of secret-sounding ones masked too."""
    plugin = parse_apprise_url(url)
    if plugin is None:
        return url_scheme(url)
    shown = urlsplit(plugin.url(privacy=True))
    given = {key for key, _ in _pairs(urlsplit(url).query)}
    query = [(key, MASK if _SECRET_KEY.search(key) else value) for key, value in _pairs(shown.query) if key in given]
    return urlunsplit(shown._replace(query="&".join(f"{quote(k, safe='+:-')}={quote(v, safe='*')}" for k, v in query)))


def _pairs(query: str) -> list[tuple[str, str]]:
    """A query's keys and values, percent-decoded ("+" stays "+": Apprise's header prefix)."""
    pairs = []
    for part in query.split("&"):
        if part:
            key, _, value = part.partition("=")
            pairs.append((unquote(key), unquote(value)))
    return pairs
