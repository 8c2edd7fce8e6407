"""The access service: creates, lists, revokes and checks API tokens (see tokens.py)."""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from server.model.access.tokens import (
    FIRST_ADMIN_NAME,
    MAX_TOKEN_LENGTH,
    TOKEN_PREFIX,
    ApiToken,
    Role,
    TokenStatus,
    clean_name,
    hash_secret,
    new_secret,
)
from server.model.errors import InvalidInput, NotFound, quoted
from server.model.ids import new_id
from server.storage.db import tokens_repo as repo
from server.storage.db.database import Database

log = logging.getLogger(__name__)

# Only tokens that exist are remembered, so this bounds memory by the number of real tokens
# in use; past it, the memory starts afresh.
_KNOWN_TOKENS_LIMIT = 1024


class AccessService:
    """Creates, lists, revokes and checks API tokens."""

    def __init__(
        self,
        db: Database,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        active_cache_seconds: float = 0.0,
    ) -> None:
        self._db = db
        self._now = clock
        # Open websockets re-check their token every few seconds; with a thousand of them on
        # one token, one lookup per token in this window answers them all.
        self._active_cache_seconds = active_cache_seconds
        self._active: dict[str, tuple[float, bool]] = {}
        # Every HTTP request checks its token: tokens found, by secret digest, with the
        # database's data version they were read under. An entry holds only while that
        # version does, so a token revoked by the CLI (another process) is refused at once.
        self._known: dict[str, tuple[int, ApiToken]] = {}
        # The lookup under way per token: checks that arrive meanwhile wait for it instead of
        # each making their own (they come in bursts: the sockets opened together).
        self._looking_up: dict[str, asyncio.Future[bool]] = {}
        self._revocations = 0  # a lookup that a revoke overtook must not refill the cache

    async def create(
        self, *, name: str, role: Role, expires_in: timedelta | None = None, created_by: str | None = None
    ) -> tuple[ApiToken, str]:
        """A new token and its secret; the secret is shown to the caller once and never again."""
        name = clean_name(name)
        if expires_in is not None and expires_in <= timedelta(0):
            raise InvalidInput("the expiry must be in the future", field="expires_in")
        now = self._now()
        secret = new_secret()
        token = ApiToken(
            id=new_id("tok"),
            name=name,
            role=role,
            hint=secret[: len(TOKEN_PREFIX) + 4],
            created_at=now,
            created_by=created_by,
            expires_at=now + expires_in if expires_in is not None else None,
            revoked_at=None,
        )
        async with self._db.write() as session:
            if await repo.active_by_name(session, name) is not None:
                raise InvalidInput(f"an active token named {quoted(name)} exists; revoke it first", field="name")
            await repo.insert(session, token, hash_secret(secret))
        return token, secret

    async def list(self) -> list[ApiToken]:
        """Every token ever made, oldest first, revoked and expired ones included."""
        async with self._db.read() as session:
            return await repo.list_all(session)

    def now(self) -> datetime:
        """The time token states are judged by (the server's clock)."""
        return self._now()

    async def revoke(self, name_or_id: str, *, from_api: bool = False) -> ApiToken:
        """Revoke a token by its id, or by the name of an active token; it stops working at once.

        `from_api` (the API's revoke): by id only, and the last active ADMIN token is refused,
        since through the API nobody could make another one. The command line can revoke it (a
        leaked last admin token must be revocable), and `backups token create` is its way back."""
        async with self._db.write() as session:
            token = await repo.by_id(session, name_or_id)
            if token is None and not from_api:
                token = await repo.active_by_name(session, name_or_id)
            if token is None:
                what = "id" if from_api else "id or active name"
                raise NotFound(f"no token with {what} {quoted(name_or_id)}", field="id" if from_api else "token")
            if from_api and token.role is Role.ADMIN and token.status(self._now()) is TokenStatus.ACTIVE:
                admins = [t for t in await repo.list_all(session) if t.role is Role.ADMIN]
                if not any(t.id != token.id and t.status(self._now()) is TokenStatus.ACTIVE for t in admins):
                    raise InvalidInput(
                        f"{quoted(token.name)} is the last active ADMIN token: create another admin token first "
                        "(or revoke it on the server with `backups token revoke`)",
                        field="id",
                    )
            if token.revoked_at is None:
                token = await repo.set_revoked(session, token.id, self._now())
        self._active.pop(token.id, None)
        self._looking_up.pop(token.id, None)  # may have read the token before the revoke
        self._revocations += 1
        return token

    async def authenticate(self, secret: str | None) -> ApiToken | None:
        """The active token with this secret, or None (missing, unknown, expired or revoked)."""
        if not secret or not secret.startswith(TOKEN_PREFIX) or len(secret) > MAX_TOKEN_LENGTH:
            return None
        digest = hash_secret(secret)
        version = self._db.data_version()
        known = self._known.get(digest) if version is not None else None
        if known is not None and known[0] == version:
            token = known[1]
        else:
            found = await self._by_digest(digest)
            if found is None:
                return None
            token = found
            if version is not None:
                if len(self._known) >= _KNOWN_TOKENS_LIMIT:
                    self._known.clear()
                self._known[digest] = (version, token)
        status = token.status(self._now())
        if status is not TokenStatus.ACTIVE:
            log.info("refused the %s token %r (%s)", status.value, token.name, token.id)
            return None
        return token

    async def refusal(self, secret: str | None) -> TokenStatus | None:
        """Why this secret is refused: EXPIRED or REVOKED for a token it matches, None when it matches none.

        Only the holder of the secret learns this: without it, nobody can ask about a token."""
        if not secret or not secret.startswith(TOKEN_PREFIX) or len(secret) > MAX_TOKEN_LENGTH:
            return None
        token = await self._by_digest(hash_secret(secret))
        if token is None:
            return None
        status = token.status(self._now())
        return status if status is not TokenStatus.ACTIVE else None

    async def _by_digest(self, digest: str) -> ApiToken | None:
        async with self._db.connect() as connection:  # the lightest read there is
            found = await repo.by_hash(connection, digest)
        if found is None:
            return None
        token, stored = found
        # The lookup matched on the digest already; compare again in constant time so that no
        # code path here depends on how much of a guess was right.
        return token if hmac.compare_digest(stored, digest) else None

    async def is_active(self, token_id: str, *, recent_ok: bool = False) -> bool:
        """Whether the token is still neither revoked nor expired (for long-lived connections).

        `recent_ok`: an answer looked up within the last moment will do (for the periodic
        checks of open websockets; an operation's own check always asks the database)."""
        if not recent_ok:
            return await self._look_up(token_id)
        known = self._active.get(token_id)
        if known and time.monotonic() - known[0] < self._active_cache_seconds:
            return known[1]
        pending = self._looking_up.get(token_id)
        if pending is None:
            pending = self._looking_up[token_id] = asyncio.ensure_future(self._look_up(token_id))
            pending.add_done_callback(lambda done: self._forget_lookup(token_id, done))
        return await asyncio.shield(pending)  # one waiter going away must not cancel the rest

    def _forget_lookup(self, token_id: str, done: asyncio.Future[bool]) -> None:
        if self._looking_up.get(token_id) is done:
            del self._looking_up[token_id]

    async def _look_up(self, token_id: str) -> bool:
        revocations = self._revocations
        async with self._db.read() as session:
            token = await repo.by_id(session, token_id)
        active = token is not None and token.status(self._now()) is TokenStatus.ACTIVE
        if self._active_cache_seconds > 0 and revocations == self._revocations:
            if len(self._active) > 10_000:
                self._active.clear()
            self._active[token_id] = (time.monotonic(), active)
        return active

    async def create_first_admin(self) -> str | None:
        """On a server that never had a token, make an admin token and return its secret."""
        async with self._db.read() as session:
            if await repo.count(session) > 0:
                return None
        _, secret = await self.create(name=FIRST_ADMIN_NAME, role=Role.ADMIN, created_by="first start")
        return secret
