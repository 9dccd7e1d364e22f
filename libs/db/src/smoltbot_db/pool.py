"""The PostgreSQL connection pool every service uses (style-and-libs §B4).

The pool is created closed and opened by the caller (``await pool.open(wait=...)``): opening in
the constructor is deprecated for async pools, and a worker must be able to start its probe server
before the database is reachable.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import psycopg
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool
from smoltbot_resilience import Backoff, retry_until

__all__ = ["Pool", "create_pool", "ping", "wait_until_reachable"]

log = logging.getLogger(__name__)

Pool = AsyncConnectionPool[psycopg.AsyncConnection[TupleRow]]


def create_pool(
    url: str,
    *,
    min_size: int = 1,
    max_size: int = 4,
    name: str = "smoltbot",
    application_name: str | None = None,
    timeout_s: float = 30.0,
    max_lifetime_s: float = 1800.0,
) -> Pool:
    """A closed pool; the caller opens it (``await pool.open(wait=False)`` in workers).

    ``check`` validates a connection before lending it, so a database restart costs one retried
    connection instead of an error inside a batch.
    """
    kwargs: dict[str, Any] = {"autocommit": False}
    if application_name:
        kwargs["application_name"] = application_name
    return AsyncConnectionPool(
        url,
        open=False,
        min_size=min_size,
        max_size=max(max_size, min_size),
        name=name,
        timeout=timeout_s,
        max_lifetime=max_lifetime_s,
        check=AsyncConnectionPool.check_connection,
        kwargs=kwargs,
    )


async def ping(pool: Pool, timeout_s: float = 2.0) -> None:
    """Readiness check: raise unless a pooled connection answers ``SELECT 1`` in time."""
    async with pool.connection(timeout=timeout_s) as conn:
        await conn.execute("SELECT 1")


async def wait_until_reachable(
    pool: Pool,
    *,
    stop: asyncio.Event | None = None,
    initial_delay_s: float = 0.5,
    max_delay_s: float = 15.0,
) -> bool:
    """Ping with capped exponential backoff until the database answers; never gives up on its own.

    Workers call this before consuming: crashing would only make a restart loop, and consuming
    without a database would burn delivery attempts into the DLQ. Returns False when ``stop``
    was set (shutdown requested) before the database became reachable.
    """
    backoff = Backoff(initial_delay_s, max_delay_s)

    async def attempt() -> int:
        await ping(pool, timeout_s=max(2.0, backoff.current))
        return 1

    def on_retry(exc: BaseException, delay: float, attempt_number: int) -> None:
        log.warning(
            "postgres not reachable yet; retrying",
            extra={"attempt": attempt_number, "retry_in_s": delay, "error": _describe(exc)},
        )

    # Pool timeouts are psycopg errors too.
    reached = await retry_until(
        attempt, retry_on=(psycopg.Error, OSError), backoff=backoff, stop=stop, on_retry=on_retry
    )
    if reached is None:
        return False
    log.info("postgres reachable")
    return True


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]
