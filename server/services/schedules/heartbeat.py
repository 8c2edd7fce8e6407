"""A heartbeat for the server itself (BACKUPS_HEARTBEAT_URL): a GET after each successful
scheduled run, and the fail variant after a failed one, so that an outside watcher
(healthchecks.io, Uptime Kuma's push monitor) notices when the server is down or stuck, which
no message from the server can say.

A ping runs in a task of its own, off the run's path: a slow or dead watcher delays nothing and
fails nothing; it is given up after a timeout, and logged with the URL's secrets masked.
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from server.model.url_credentials import MASK

log = logging.getLogger(__name__)


def fail_url(url: str) -> str:
    """The URL that says "failed": Uptime Kuma's `?status=up` becomes `status=down`; any other
    URL gets `/fail` after its path (healthchecks.io's convention), its query kept."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(key == "status" for key, _ in query):
        changed = [(key, "down" if key == "status" else value) for key, value in query]
        return urlunsplit(parts._replace(query=urlencode(changed)))
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/fail"))


def masked_url(url: str) -> str:
    """The URL as a log may show it: no user or password, no query (a token often lives there)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    if parts.username is not None or parts.password is not None:
        host = f"{MASK}@{host}"
    return urlunsplit((parts.scheme, host, parts.path, MASK if parts.query else "", ""))


class Heartbeat:
    """Pings the heartbeat URL, if there is one, each ping in a task of its own."""

    def __init__(self, url: str | None, *, timeout: float = 10.0) -> None:
        self._url = url
        self._timeout = timeout
        self._pings: set[asyncio.Task[None]] = set()

    @property
    def enabled(self) -> bool:
        return self._url is not None

    def ping(self, *, succeeded: bool) -> None:
        """Send a ping in the background (the fail variant unless `succeeded`); returns at once."""
        if self._url is None:
            return
        url = self._url if succeeded else fail_url(self._url)
        task = asyncio.create_task(self._send(url), name="heartbeat")
        self._pings.add(task)
        task.add_done_callback(self._pings.discard)

    async def _send(self, url: str) -> None:
        try:
            async with httpx.AsyncClient(timeout=self._timeout, follow_redirects=True, trust_env=False) as client:
                response = await client.get(url, headers={"User-Agent": "backups-heartbeat"})
            if response.status_code >= 400:
                log.warning("heartbeat %s answered HTTP %s", masked_url(url), response.status_code)
        except asyncio.CancelledError:
            raise
        except httpx.TimeoutException:
            log.warning("heartbeat %s: no answer within %g s", masked_url(url), self._timeout)
        except (httpx.HTTPError, OSError) as error:
            # The error's own text may repeat the whole URL: only its kind is logged.
            log.warning("heartbeat %s could not be sent: %s", masked_url(url), type(error).__name__)

    async def stop(self) -> None:
        """Give up the pings still under way (the server is stopping)."""
        for task in list(self._pings):
            task.cancel()
        await asyncio.gather(*self._pings, return_exceptions=True)
