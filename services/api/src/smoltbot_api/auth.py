"""Who may call each ``/v1`` route: the admin token or an API key, its scope, its rate limit.

One guard on the ``/v1`` router (``app.py``) runs before every handler; probes and ``/metrics``
stay open. For each request it

1. reads ``Authorization: Bearer <token>``; missing or malformed → 401 ``authentication_error``
   (with ``WWW-Authenticate: Bearer``);
2. accepts ``SMOLTBOT_ADMIN_TOKEN`` (constant-time comparison) as scope ``admin`` — the
   bootstrap credential, never rate limited — or else looks the token up as an API key
   (``smoltbot_db.api_keys``: only its SHA-256 is stored). An unknown or revoked key → 401;
3. spends one token of the key's rate limit (``ratelimit.py``); empty → 429
   ``rate_limit_error`` with ``Retry-After``;
4. compares the key's scope with the route's: ``read`` < ``write`` < ``admin`` → 403
   ``permission_error`` when the key's is lower.

**Declaring a route's scope.** Put it in the route's ``opt`` with :func:`scope`::

    from smoltbot_api.auth import scope

    @put("/agents/{agent_id:str}/enforcement", opt=scope("write"))
    @get("/webhooks", opt=scope("admin"))

Without a declaration a GET (or HEAD) route needs ``read`` and any other method ``admin``, so
a new mutating route is closed to ``write`` keys until it says otherwise. Use ``write`` for
changes to agents, cards and containment, ``admin`` for API keys, webhooks and the stream and
dead-letter status. A handler that wants to know the caller (an audit ``actor``) reads
:func:`principal_of`.

**Secrets.** A key is found by its SHA-256 (an index lookup), so the time an answer takes
depends only on the hash, never on how much of a stored key a guess matches; the admin token is
compared in constant time. Neither is ever logged.

**Caching.** Key lookups are cached in process for ``SMOLTBOT_API_KEY_CACHE_TTL_S`` (at most
5 s, also for unknown keys), so a request is not a database round trip: a key revoked through
another replica or the CLI keeps working for at most that long (a revocation through this
process's ``DELETE /v1/api-keys/{id}`` takes effect here at once). ``last_used_at`` is written at
most once a minute per key and process.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Final

import psycopg
import psycopg_pool
from litestar import Litestar
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.types import Guard
from smoltbot_db import api_keys
from smoltbot_db.api_keys import ApiKey, Scope, scope_allows

from smoltbot_api.db import Database
from smoltbot_api.errors import (
    AuthenticationError,
    PermissionDeniedError,
    RateLimitedError,
    ServiceUnavailableError,
)
from smoltbot_api.ratelimit import RateLimiter
from smoltbot_api.settings import ApiSettings

__all__ = [
    "ADMIN_PRINCIPAL",
    "SCOPE_OPT",
    "Authenticator",
    "Principal",
    "principal_of",
    "required_scope",
    "scope",
]

logger = logging.getLogger(__name__)

SCOPE_OPT: Final = "scope"
_SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
_STATE_KEY: Final = "smoltbot_principal"
_MISSING = "missing or invalid bearer token"
_REVOKED = "api key revoked"
_TOUCH_EVERY_S: Final = 60.0
_CACHE_MAX: Final = 10_000


def scope(required: Scope) -> dict[str, Any]:
    """A route's ``opt`` declaring the scope it needs: ``@post(..., opt=scope("write"))``."""
    return {SCOPE_OPT: required}


def required_scope(opt: Mapping[str, Any], method: str) -> str:
    """The scope a request needs: the route's declaration, else read for GET/HEAD, else admin.

    A declaration that is not a known scope counts as ``admin`` (closed, not open)."""
    declared = opt.get(SCOPE_OPT)
    if declared is None:
        return "read" if method.upper() in _SAFE_METHODS else "admin"
    return declared if declared in api_keys.SCOPES else "admin"


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of a request: ``admin-token`` or the API key's id, and its scope."""

    id: str
    scope: Scope
    key_id: str | None = None


ADMIN_PRINCIPAL: Final = Principal(id="admin-token", scope="admin")


def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal | None:
    """Who made this request (set by the guard; None outside ``/v1``)."""
    found = connection.scope.get("state", {}).get(_STATE_KEY)
    return found if isinstance(found, Principal) else None


class _KeyCache:
    """token hash -> (row or None, expiry); bounded, entries live ``ttl_s``."""

    def __init__(self, ttl_s: float, clock: Callable[[], float]) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._entries: dict[str, tuple[ApiKey | None, float]] = {}

    def get(self, token_hash: str) -> tuple[bool, ApiKey | None]:
        entry = self._entries.get(token_hash)
        if entry is None:
            return False, None
        row, expires = entry
        if self._clock() >= expires:
            del self._entries[token_hash]
            return False, None
        return True, row

    def put(self, token_hash: str, row: ApiKey | None) -> None:
        if self.ttl_s <= 0:
            return
        now = self._clock()
        if len(self._entries) >= _CACHE_MAX:  # a flood of random keys: start over
            self._entries = {h: e for h, e in self._entries.items() if e[1] > now}
            if len(self._entries) >= _CACHE_MAX:
                self._entries.clear()
        self._entries[token_hash] = (row, now + self.ttl_s)

    def forget(self, key_id: str) -> None:
        self._entries = {
            h: e for h, e in self._entries.items() if e[0] is None or e[0].id != key_id
        }


class Authenticator:
    """The ``/v1`` guard (:meth:`as_guard`) and what it keeps: key cache, rate limiter."""

    def __init__(
        self,
        admin_token: str,
        db: Database,
        limiter: RateLimiter,
        *,
        cache_ttl_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._admin = admin_token.encode()
        self._db = db
        self.limiter = limiter
        self._clock = clock
        self._cache = _KeyCache(cache_ttl_s, clock)
        self._touched: dict[str, float] = {}

    @classmethod
    def from_settings(cls, settings: ApiSettings, db: Database) -> Authenticator:
        limiter = RateLimiter(
            settings.redis_url,
            settings.stream_prefix,
            per_min=settings.rate_limit_per_min,
            burst=settings.rate_limit_burst,
        )
        return cls(settings.admin_token, db, limiter, cache_ttl_s=settings.key_cache_ttl_s)

    def as_guard(self) -> Guard:
        """The guard for the ``/v1`` router (a plain function: Litestar deep-copies routers,
        and this object holds a Redis client)."""

        async def guard(
            connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
        ) -> None:
            await self.check(connection, handler)

        return guard

    async def check(
        self, connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
    ) -> None:
        """Authenticate, rate-limit and authorise one request (the module's steps 1-4)."""
        principal = await self.authenticate(connection.headers.get("authorization", ""))
        connection.scope.setdefault("state", {})[_STATE_KEY] = principal
        if principal.key_id is not None:
            wait_s = await self.limiter.check(principal.key_id)
            if wait_s is not None:
                raise RateLimitedError(
                    f"rate limit of this API key exceeded, retry in {wait_s} s",
                    retry_after_s=wait_s,
                )
        needed = required_scope(handler.opt, str(connection.scope.get("method", "GET")))
        if not scope_allows(principal.scope, needed):
            raise PermissionDeniedError(
                f"this API key has scope {principal.scope}; this route needs {needed}"
            )

    async def authenticate(self, header: str) -> Principal:
        """The principal of an ``Authorization`` header value, or :class:`AuthenticationError`."""
        kind, _sep, token = header.partition(" ")
        token = token.strip()
        if kind.lower() != "bearer" or not token:
            raise AuthenticationError(_MISSING)
        if hmac.compare_digest(token.encode(), self._admin):
            return ADMIN_PRINCIPAL
        if not api_keys.looks_like_key(token):
            raise AuthenticationError(_MISSING)
        row = await self._lookup(token)
        if row is None:
            raise AuthenticationError(_MISSING)
        if row.revoked:
            raise AuthenticationError(_REVOKED)
        await self._touch(row.id)
        return Principal(id=row.id, scope=row.scope, key_id=row.id)

    async def _lookup(self, token: str) -> ApiKey | None:
        token_hash = api_keys.hash_key(token)
        hit, row = self._cache.get(token_hash)
        if hit:
            return row
        async with self._db.connection() as conn:
            row = await api_keys.find_key(conn, token)
        self._cache.put(token_hash, row)
        return row

    async def _touch(self, key_id: str) -> None:
        """``last_used_at`` at most once a minute per key; a failure never fails the request."""
        now = self._clock()
        if now - self._touched.get(key_id, -_TOUCH_EVERY_S) < _TOUCH_EVERY_S:
            return
        self._touched[key_id] = now
        try:
            async with self._db.connection() as conn:
                await api_keys.touch_key(conn, key_id)
        except (psycopg.Error, psycopg_pool.PoolTimeout, ServiceUnavailableError) as exc:
            logger.warning(
                "could not record an API key's last use",
                extra={"key_id": key_id, "error": type(exc).__name__},
            )

    def forget(self, key_id: str) -> None:
        """Drop a key from this process's cache (it was just revoked here)."""
        self._cache.forget(key_id)

    async def close(self) -> None:
        await self.limiter.close()

    @asynccontextmanager
    async def lifespan(self, _: Litestar) -> AsyncIterator[None]:
        """For the app's ``lifespan`` list: closes the rate limiter's Redis client at the end."""
        try:
            yield
        finally:
            await self.close()
