"""XADDs with a deadline, the one way the publisher's parts write to Redis.

A batch is one ``EVALSHA`` of a script that XADDs every record: one command to pack and one
reply to parse, where a pipeline costs the client about twice as much per record. Records are
independent: a failure part-way leaves the batch to be sent again (consumers are idempotent).
With partitioned streams on a Redis Cluster, a batch must hold one hash slot's streams only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from smoltbot_contracts.streams import stream_key

from smoltbot_bus._budget import ByteBudget
from smoltbot_bus._entries import text
from smoltbot_bus._metrics import PUBLISHED
from smoltbot_bus._spool import Record

# KEYS: the streams of the batch. ARGV, per record: the index of its stream in KEYS, its number
# of fields, then the fields and values.
_XADD_MANY = """
local i, n = 1, 0
while i <= #ARGV do
  local fields = tonumber(ARGV[i + 1])
  redis.call('XADD', KEYS[tonumber(ARGV[i])], '*', unpack(ARGV, i + 2, i + 1 + fields * 2))
  i = i + 2 + fields * 2
  n = n + 1
end
return n
"""


class Sender:
    """Sends records to their streams under ``prefix``; every record sent is counted (metric
    and byte budget). Raises on failure or after ``timeout_s``: callers decide what follows."""

    def __init__(self, redis: Redis, prefix: str, budget: ByteBudget, timeout_s: float) -> None:
        self._redis = redis
        self._prefix = prefix
        self._budget = budget
        self._timeout_s = timeout_s
        self._published: dict[str, Any] = {}  # labelled children, looked up once per stream
        self._xadd_many = redis.register_script(_XADD_MANY)

    async def send(self, records: Sequence[Record]) -> None:
        """Every record in one round trip and one command."""
        if not records:
            return
        keys: dict[str, int] = {}
        args: list[Any] = []
        for stream, fields in records:
            index = keys.setdefault(stream, len(keys) + 1)
            args += (index, len(fields))
            for name, value in fields.items():
                args += (name, value)
        prefixed = [stream_key(self._prefix, stream) for stream in keys]
        async with asyncio.timeout(self._timeout_s):
            await self._xadd_many(keys=prefixed, args=args)
        for record in records:
            self._sent(record)

    async def send_one(self, record: Record) -> str:
        """XADD one record now; returns its entry id."""
        stream, fields = record
        async with asyncio.timeout(self._timeout_s):
            key = stream_key(self._prefix, stream)
            entry_id = await self._redis.xadd(key, fields)  # type: ignore[arg-type]
        self._sent(record)
        return text(entry_id)

    def _sent(self, record: Record) -> None:
        stream, fields = record
        counter = self._published.get(stream)
        if counter is None:
            counter = self._published[stream] = PUBLISHED.labels(stream)
        counter.inc()
        self._budget.count(fields)
