"""A private key prefix per test on the shared Redis, its cleanup, and waiting on a stream."""

from __future__ import annotations

import asyncio
import time
from typing import Any
from uuid import uuid4

import redis
import redis.asyncio

from smoltbot_testing.env import REDIS_URL

__all__ = [
    "REDIS_URL",
    "delete_prefix",
    "delete_prefix_keys",
    "delete_prefix_sync",
    "unique_prefix",
    "wait_for_entries",
]


def unique_prefix() -> str:
    return f"test-{uuid4().hex[:8]}:"


async def delete_prefix(client: redis.asyncio.Redis, prefix: str) -> None:
    keys = [k async for k in client.scan_iter(match=f"{prefix}*", count=500)]
    if keys:
        await client.delete(*keys)


def delete_prefix_keys(client: redis.Redis, prefix: str) -> None:
    """``delete_prefix`` with a sync client the caller already holds."""
    keys = list(client.scan_iter(match=f"{prefix}*", count=500))
    if keys:
        client.delete(*keys)


def delete_prefix_sync(prefix: str, url: str = REDIS_URL) -> None:
    """``delete_prefix`` on a connection of its own to ``url``."""
    client = redis.Redis.from_url(url)
    try:
        delete_prefix_keys(client, prefix)
    finally:
        client.close()


async def wait_for_entries(
    client: redis.asyncio.Redis, key: str, count: int, timeout_s: float = 10.0
) -> list[Any]:
    """The entries of stream ``key`` once it holds at least ``count``; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        entries = await client.xrange(key) or []
        if len(entries) >= count:
            return list(entries)
        await asyncio.sleep(0.05)
    raise AssertionError(f"{key}: expected {count} entries, have {await client.xlen(key)}")
