from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from smoltbot_bus import redis_client
from smoltbot_testing.keys import delete_prefix, unique_prefix


@pytest.fixture
def prefix() -> str:
    return unique_prefix()


@pytest.fixture
async def redis(prefix: str) -> AsyncIterator[Redis]:
    client = redis_client("redis://127.0.0.1:6379/0")
    yield client
    await delete_prefix(client, prefix)
    await client.aclose()
