"""The PostgreSQL connection pool and its life cycle.

The pool is opened only once the database answered at least once: until then a background task
retries with jittered exponential backoff (``smoltbot_resilience``) while ``/health/startup`` and
``/health/ready`` say 503, so an unreachable database at start never turns into a crash loop
(architecture §8). Later outages are handled by the pool itself (broken connections are checked
out and replaced).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

import msgspec
import psycopg
from psycopg import AsyncConnection
from psycopg.types.json import set_json_loads
from psycopg_pool import AsyncConnectionPool
from smoltbot_resilience import Backoff, retry_until

from smoltbot_api.errors import ServiceUnavailableError

__all__ = ["Database"]

logger = logging.getLogger(__name__)


async def _configure_connection(conn: AsyncConnection) -> None:
    """Decode jsonb with msgspec (faster than the stdlib) on every pooled connection."""
    set_json_loads(msgspec.json.decode, conn)


class Database:
    """Owns the pool; ``connection()`` hands out a connection or raises a 503-mapped error."""

    def __init__(
        self,
        conninfo: str,
        *,
        min_size: int,
        max_size: int,
        timeout_s: float,
        on_connected: Callable[[], None] | None = None,
        connect_timeout_s: float = 3.0,
        initial_backoff_s: float = 0.5,
        max_backoff_s: float = 10.0,
    ) -> None:
        self._conninfo = conninfo
        self._timeout_s = timeout_s
        self._connect_timeout_s = connect_timeout_s
        # Full jitter keeps several api replicas from retrying in lock step.
        self._backoff = Backoff(initial_backoff_s, max_backoff_s, jitter=True)
        self._on_connected = on_connected
        self._pool: AsyncConnectionPool[AsyncConnection] = AsyncConnectionPool(
            conninfo,
            open=False,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout_s,
            name="smoltbot-api",
            # Read-only API: autocommit avoids idle-in-transaction sessions between statements.
            kwargs={"autocommit": True, "connect_timeout": max(1, round(connect_timeout_s))},
            configure=_configure_connection,
            check=AsyncConnectionPool.check_connection,
            # Give up a replacement attempt early; the next request grows the pool again, so
            # recovery after a long outage is not stuck behind a multi-minute backoff.
            reconnect_timeout=30.0,
        )
        self._connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def start(self) -> None:
        """Begin connecting in the background; returns at once."""
        if self._task is None:
            self._task = asyncio.create_task(self._connect_loop(), name="smoltbot-api-db-connect")

    async def _probe(self) -> None:
        conn = await AsyncConnection.connect(
            self._conninfo, connect_timeout=max(1, round(self._connect_timeout_s))
        )
        await conn.close()

    async def _open_pool(self) -> None:
        await asyncio.wait_for(self._probe(), self._connect_timeout_s + 1.0)
        await self._pool.open(wait=False)

    async def _connect_loop(self) -> None:
        """Until the database answers; ``close`` cancels it (there is no other way to stop)."""
        attempts = 0

        def retrying(exc: BaseException, delay_s: float, attempt: int) -> None:
            nonlocal attempts
            attempts = attempt
            logger.warning(
                "database not reachable yet, retrying",
                extra={
                    "attempt": attempt,
                    "retry_in_s": round(delay_s, 2),
                    "error": f"{type(exc).__name__}: {exc}"[:300],
                },
            )

        await retry_until(
            self._open_pool,
            retry_on=(psycopg.Error, OSError, TimeoutError),
            backoff=self._backoff,
            on_retry=retrying,
        )
        logger.info("database connected", extra={"attempt": attempts + 1})
        self._connected.set()
        if self._on_connected is not None:
            self._on_connected()

    async def wait_connected(self, timeout_s: float) -> bool:
        """Wait until the pool is open (used by tests and tooling); False on timeout."""
        try:
            await asyncio.wait_for(self._connected.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection]:
        """A pooled connection; 503 (via the error mapping) while the database is unreachable."""
        if not self._connected.is_set():
            raise ServiceUnavailableError("database not connected yet, retry later")
        async with self._pool.connection() as conn:
            yield conn

    async def ping(self) -> None:
        """Readiness check: raises when no pooled connection can run a trivial query."""
        if not self._connected.is_set():
            raise ServiceUnavailableError("database not connected yet")
        async with self._pool.connection(timeout=min(self._timeout_s, 1.5)) as conn:
            await conn.execute("SELECT 1")

    async def close(self) -> None:
        """Stop connecting and close the pool; safe to call in any state."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._pool.close()
