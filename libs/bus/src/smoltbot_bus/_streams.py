"""Stream-id arithmetic and the per-stream chores of housekeeping (architecture §3.2);
:mod:`smoltbot_bus._housekeeping` schedules them.

* lag / pending / oldest-pending-age gauges for each (stream, group);
* retention trimming that never removes an entry a live group has not acked: the trim point is
  the smaller of "now - retention" and, over every live group, the first entry it still needs;
  under byte pressure the time window is ignored and everything acked by every live group may
  go. A group is live while its consumers refresh its heartbeat key (``hb:<stream>:<group>``,
  see :mod:`smoltbot_bus._heartbeat`); a group without one is stale, ignored and reported;
* removal of idle consumers that hold nothing pending.

Redis 7.0 has no ACKED trimming (8.2+), hence the computation here. Only ``XTRIM MINID ~`` is
used (never XDEL), so consumer-group lag stays meaningful.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError
from smoltbot_contracts.streams import ALL_STREAMS

from smoltbot_bus._heartbeat import heartbeat_key
from smoltbot_bus._metrics import (
    CONSUMERS_REMOVED,
    LAG,
    OLDEST_PENDING_AGE,
    PENDING,
    STALE_GROUPS,
    TRIMMED,
)

log = logging.getLogger(__name__)

StreamId = tuple[int, int]


def parse_id(value: bytes | str) -> StreamId:
    text = value.decode() if isinstance(value, bytes) else value
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def format_id(sid: StreamId) -> str:
    return f"{sid[0]}-{sid[1]}"


def _field(row: dict[Any, Any], name: str) -> Any:
    return row.get(name, row.get(name.encode()))


async def bus_memory(redis: Redis, prefix: str) -> int:
    """Bytes used by every bus stream under ``prefix`` (the quantity the byte budget bounds)."""
    pipe = redis.pipeline(transaction=False)
    for stream in ALL_STREAMS:
        pipe.memory_usage(f"{prefix}{stream}")
    return sum(int(size or 0) for size in await pipe.execute())


async def group_floors(
    redis: Redis, key: str, *, prefix: str, stream: str
) -> tuple[dict[str, StreamId], list[str]]:
    """Per live group, the first entry it still needs; plus the names of stale groups."""
    floors: dict[str, StreamId] = {}
    stale: list[str] = []
    try:
        groups: list[dict[Any, Any]] = await redis.xinfo_groups(key)
    except ResponseError:  # no such key
        return floors, stale
    for g in groups:
        name_raw = _field(g, "name")
        name = name_raw.decode() if isinstance(name_raw, bytes) else str(name_raw)
        if not await redis.exists(heartbeat_key(prefix, stream, name)):
            stale.append(name)
            continue
        last = parse_id(_field(g, "last-delivered-id"))
        floor = (last[0], last[1] + 1)
        summary = await redis.xpending(key, name)
        if int(summary["pending"]) and summary["min"] is not None:
            floor = min(floor, parse_id(summary["min"]))
        floors[name] = floor
    return floors, stale


async def trim_stream(
    redis: Redis,
    prefix: str,
    stream: str,
    *,
    retention_ms: int,
    under_pressure: bool = False,
) -> int:
    """Trim to the retention window (or, under byte pressure, to what live groups still need),
    never past any live group's floor; returns the number of entries removed."""
    key = f"{prefix}{stream}"
    now_ms = int(time.time() * 1000)
    cutoff: StreamId = (now_ms + 1, 0) if under_pressure else (now_ms - retention_ms, 0)
    floors, stale = await group_floors(redis, key, prefix=prefix, stream=stream)
    STALE_GROUPS.labels(stream).set(len(stale))
    if stale:
        log.warning(
            "stale consumer groups ignored by the trimmer",
            extra={"stream": stream, "groups": stale},
        )
    target = min([cutoff, *floors.values()])
    removed = int(await redis.xtrim(key, minid=format_id(target), approximate=True))
    if removed:
        TRIMMED.labels(stream).inc(removed)
    return removed


async def export_lag(redis: Redis, key: str, stream: str, group: str) -> None:
    """Set the lag, pending and oldest-pending-age gauges for one (stream, group)."""
    try:
        groups: list[dict[Any, Any]] = await redis.xinfo_groups(key)
    except ResponseError:
        return
    for g in groups:
        name_raw = _field(g, "name")
        name = name_raw.decode() if isinstance(name_raw, bytes) else str(name_raw)
        if name != group:
            continue
        lag = _field(g, "lag")
        if lag is None:  # unknown after some trims/deletes: fall back to length - entries read
            read = _field(g, "entries-read")
            lag = max(0, int(await redis.xlen(key)) - int(read or 0))
        LAG.labels(stream, group).set(int(lag))
        pending = int(_field(g, "pending"))
        PENDING.labels(stream, group).set(pending)
        age = 0.0
        if pending:
            summary = await redis.xpending(key, group)
            if summary["min"] is not None:
                age = max(0.0, time.time() - parse_id(summary["min"])[0] / 1000)
        OLDEST_PENDING_AGE.labels(stream, group).set(age)


async def remove_idle_consumers(
    redis: Redis, key: str, group: str, *, me: str, idle_after_ms: int
) -> int:
    """Delete consumers idle longer than ``idle_after_ms`` that hold nothing pending."""
    removed = 0
    try:
        consumers: list[dict[Any, Any]] = await redis.xinfo_consumers(key, group)
    except ResponseError:
        return 0
    for c in consumers:
        raw = _field(c, "name")
        name = raw.decode() if isinstance(raw, bytes) else str(raw)
        if name == me or int(_field(c, "pending")) or int(_field(c, "idle")) < idle_after_ms:
            continue
        await redis.xgroup_delconsumer(key, group, name)
        removed += 1
        CONSUMERS_REMOVED.inc()
        log.info("removed idle consumer", extra={"stream": key, "group": group, "consumer": name})
    return removed
