"""XADDs with a deadline, the one way the publisher's parts write to Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from redis.asyncio import Redis
from smoltbot_contracts.streams import stream_key

from smoltbot_bus._budget import ByteBudget
from smoltbot_bus._entries import text
from smoltbot_bus._metrics import PUBLISHED
from smoltbot_bus._spool import Record


class Sender:
    """Sends records to their streams under ``prefix``; every record sent is counted (metric
    and byte budget). Raises on failure or after ``timeout_s``: callers decide what follows."""

    def __init__(self, redis: Redis, prefix: str, budget: ByteBudget, timeout_s: float) -> None:
        self._redis = redis
        self._prefix = prefix
        self._budget = budget
        self._timeout_s = timeout_s

    async def send(self, records: Sequence[Record]) -> None:
        """One pipeline (not a transaction: the records are independent)."""
        pipe = self._redis.pipeline(transaction=False)
        for stream, fields in records:
            pipe.xadd(stream_key(self._prefix, stream), fields)  # type: ignore[arg-type]
        await asyncio.wait_for(pipe.execute(), self._timeout_s)
        for record in records:
            self._sent(record)

    async def send_one(self, record: Record) -> str:
        """XADD one record now; returns its entry id."""
        stream, fields = record
        entry_id = await asyncio.wait_for(
            self._redis.xadd(stream_key(self._prefix, stream), fields),  # type: ignore[arg-type]
            self._timeout_s,
        )
        self._sent(record)
        return text(entry_id)

    def _sent(self, record: Record) -> None:
        stream, fields = record
        PUBLISHED.labels(stream).inc()
        self._budget.count(fields)
