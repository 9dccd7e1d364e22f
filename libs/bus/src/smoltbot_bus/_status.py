"""What a bus stream looks like right now (architecture §3.2), for ``smoltbot streams``: its
length, its dead letters and, per consumer group, the consumers, lag, pending entries and whether
the group is live (its heartbeat key ``hb:<stream>:<group>`` exists) or stale.

Read-only: nothing here changes a stream, a group or a gauge. The lag arithmetic is the one the
workers export (:func:`smoltbot_bus._streams.group_lag`).
"""

from __future__ import annotations

from typing import Any

import msgspec
from redis.asyncio import Redis
from redis.exceptions import ResponseError
from smoltbot_contracts.streams import dlq_key, stream_key

from smoltbot_bus._entries import text
from smoltbot_bus._heartbeat import heartbeat_key
from smoltbot_bus._streams import group_lag, row_field, row_name


class ConsumerStatus(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    pending: int
    idle_ms: int
    """Time since the consumer last read or claimed."""


class GroupStatus(msgspec.Struct, frozen=True, kw_only=True):
    group: str
    live: bool
    """Its heartbeat key exists: the trimmer respects its floor. Otherwise it is stale."""
    consumers: list[ConsumerStatus]
    last_delivered_id: str
    lag: int
    pending: int
    oldest_pending_age_s: float


class StreamStatus(msgspec.Struct, frozen=True, kw_only=True):
    stream: str
    length: int
    first_id: str | None
    last_id: str | None
    dlq_length: int
    groups: list[GroupStatus]
    stale_groups: list[str]
    """Groups without a heartbeat: nobody consumes; the trimmer ignores them."""


async def stream_status(redis: Redis, prefix: str, stream: str) -> StreamStatus:
    """The status of logical ``stream`` (a stream that does not exist yet has length 0)."""
    key = stream_key(prefix, stream)
    length = int(await redis.xlen(key))
    first: Any = await redis.xrange(key, count=1) if length else []
    last: Any = await redis.xrevrange(key, count=1) if length else []
    try:
        rows: list[dict[Any, Any]] = await redis.xinfo_groups(key)
    except ResponseError:  # no such key
        rows = []
    groups = [await _group_status(redis, prefix, stream, row) for row in rows]
    return StreamStatus(
        stream=stream,
        length=length,
        first_id=text(first[0][0]) if first else None,
        last_id=text(last[0][0]) if last else None,
        dlq_length=int(await redis.xlen(dlq_key(prefix, stream))),
        groups=groups,
        stale_groups=[g.group for g in groups if not g.live],
    )


async def _group_status(redis: Redis, prefix: str, stream: str, row: dict[Any, Any]) -> GroupStatus:
    key, name = stream_key(prefix, stream), row_name(row)
    lag = await group_lag(redis, key, row)
    consumers: list[dict[Any, Any]] = await redis.xinfo_consumers(key, name)
    return GroupStatus(
        group=name,
        live=bool(await redis.exists(heartbeat_key(prefix, stream, name))),
        consumers=[
            ConsumerStatus(
                name=row_name(c),
                pending=int(row_field(c, "pending")),
                idle_ms=int(row_field(c, "idle")),
            )
            for c in consumers
        ],
        last_delivered_id=text(row_field(row, "last-delivered-id")),
        lag=lag.lag,
        pending=lag.pending,
        oldest_pending_age_s=round(lag.oldest_pending_age_s, 3),
    )
