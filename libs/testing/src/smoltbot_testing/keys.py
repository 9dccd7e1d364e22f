"""A private key prefix per test on the shared Redis, and its cleanup."""

from __future__ import annotations

import os
from uuid import uuid4

import redis
import redis.asyncio

REDIS_URL = os.environ.get("SMOLTBOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def unique_prefix() -> str:
    return f"test-{uuid4().hex[:8]}:"


async def delete_prefix(client: redis.asyncio.Redis, prefix: str) -> None:
    keys = [k async for k in client.scan_iter(match=f"{prefix}*", count=500)]
    if keys:
        await client.delete(*keys)


def delete_prefix_sync(prefix: str, url: str = REDIS_URL) -> None:
    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=500))
        if keys:
            client.delete(*keys)
    finally:
        client.close()
