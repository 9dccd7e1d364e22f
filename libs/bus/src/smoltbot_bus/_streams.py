"""Stream-id arithmetic and the per-stream chores of housekeeping (architecture §3.2);
:mod:`smoltbot_bus._housekeeping` schedules them.

* lag / pending / oldest-pending-age gauges for each (stream, group);
* retention trimming that never removes an entry a live group has not acked: the trim point is
  the smaller of "now - retention" and, over every live group, the first entry it still needs;
  under byte pressure the time window is ignored and everything acked by every live group may
  go. A group is live while its consumers refresh its heartbeat key (``hb:<stream>:<group>``,
  see :mod:`smoltbot_bus._heartbeat`); a group without one is stale, ignored and reported;
* removal of idle consumers that hold nothing pending;
* stream-id arithmetic and id-only range scans (replay and ``smoltbot`` count with them).

Redis 7.0 has no ACKED trimming (8.2+), hence the computation here. Only ``XTRIM MINID ~`` is
used (never XDEL), so consumer-group lag stays meaningful. The trim is planned
(:func:`plan_trim`) and then applied (:func:`apply_trim`) so that ``smoltbot trim --dry-run``
shows the very trim point the workers' housekeeping would use.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any, NamedTuple

from redis.asyncio import Redis
from redis.exceptions import ResponseError
from smoltbot_contracts.streams import ALL_STREAMS, BODY_STREAMS

from smoltbot_bus._entries import text
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
MAX_SEQ = 2**64 - 1
"""The largest sequence number: ``<ms>-<MAX_SEQ>`` is the last possible id of a millisecond."""

_PRESSURE = 0.8
"""Past this share of the byte budget acked entries go even inside the replay window, so
producers can stop spooling once consumers have caught up."""

# KEYS[1] stream; ARGV start, end, count: the ids of one XRANGE page, without the entries' fields
# (bodies can be large and the callers only count or address entries).
_RANGE_IDS = """
local page = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[2], 'COUNT', ARGV[3])
local ids = {}
for i, entry in ipairs(page) do ids[i] = entry[1] end
return ids
"""


def parse_id(value: bytes | str) -> StreamId:
    text = value.decode() if isinstance(value, bytes) else value
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def format_id(sid: StreamId) -> str:
    return f"{sid[0]}-{sid[1]}"


def id_before(sid: StreamId) -> StreamId:
    """The greatest id below ``sid`` (``0-0`` has none and is returned as is)."""
    ms, seq = sid
    if seq:
        return ms, seq - 1
    return (ms - 1, MAX_SEQ) if ms else (0, 0)


def id_after(sid: StreamId) -> StreamId:
    """The smallest id above ``sid``."""
    ms, seq = sid
    return (ms, seq + 1) if seq < MAX_SEQ else (ms + 1, 0)


def row_field(row: dict[Any, Any], name: str) -> Any:
    """Field ``name`` of one XINFO row (its keys are text or bytes, by client)."""
    return row.get(name, row.get(name.encode()))


def row_name(row: dict[Any, Any]) -> str:
    return text(row_field(row, "name"))


def scan_page(stream: str) -> int:
    """Entries per XRANGE page when scanning ``stream`` (or its dead letters) in a script: few on
    the body streams, whose entries can each hold a captured response (up to 1 MiB by default),
    so one page never costs Redis more than a few MiB."""
    return 20 if stream in BODY_STREAMS else 500


async def range_ids(
    redis: Redis, key: str, start: StreamId, end: StreamId, *, page: int
) -> AsyncIterator[list[StreamId]]:
    """The ids of ``key`` from ``start`` to ``end`` (both included), ``page`` at a time (see
    :func:`scan_page`)."""
    lower = format_id(start)
    while True:
        raw: list[bytes] = await redis.eval(_RANGE_IDS, 1, key, lower, format_id(end), page)
        if not raw:
            return
        ids = [parse_id(i) for i in raw]
        yield ids
        if len(ids) < page:
            return
        lower = "(" + format_id(ids[-1])


class Retention(NamedTuple):
    """The retention rules of the bus streams: the workers' housekeeping and ``smoltbot trim``
    apply the same ones."""

    retention_s: int
    """Replay window of ``verdicts``, ``agents`` and ``control``."""
    body_retention_s: int
    """Replay window of the body streams (``exchanges*``, ``traces*``)."""
    max_bytes: int | None
    """The bus byte budget; past 80 % of it, acked entries go even inside the window."""

    def retention_ms(self, stream: str) -> int:
        return (self.body_retention_s if stream in BODY_STREAMS else self.retention_s) * 1000

    async def under_pressure(self, redis: Redis, prefix: str) -> bool:
        return self.max_bytes is not None and (
            await bus_memory(redis, prefix) > _PRESSURE * self.max_bytes
        )


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
        name = row_name(g)
        if not await redis.exists(heartbeat_key(prefix, stream, name)):
            stale.append(name)
            continue
        last = parse_id(row_field(g, "last-delivered-id"))
        floor = (last[0], last[1] + 1)
        summary = await redis.xpending(key, name)
        if int(summary["pending"]) and summary["min"] is not None:
            floor = min(floor, parse_id(summary["min"]))
        floors[name] = floor
    return floors, stale


class TrimPlan(NamedTuple):
    """Where the trimmer cuts one stream, and why there."""

    stream: str
    target: StreamId
    """``XTRIM MINID ~`` point: entries before it may go (whole nodes only)."""
    cutoff: StreamId
    """The point the retention window (or byte pressure) alone would give."""
    floors: dict[str, StreamId]
    """Per live group, the first entry it still needs."""
    stale: list[str]
    """Groups without a heartbeat: ignored."""

    @property
    def held_by(self) -> list[str]:
        """The live groups that hold the trim point back from the cutoff."""
        if self.target >= self.cutoff:
            return []
        return sorted(g for g, floor in self.floors.items() if floor == self.target)


async def plan_trim(
    redis: Redis, prefix: str, stream: str, *, retention_ms: int, under_pressure: bool = False
) -> TrimPlan:
    """The trim point of ``stream``: the retention cutoff (under byte pressure: now, i.e. all
    that is acked), never past any live group's floor."""
    now_ms = int(time.time() * 1000)
    cutoff: StreamId = (now_ms + 1, 0) if under_pressure else (now_ms - retention_ms, 0)
    key = f"{prefix}{stream}"
    floors, stale = await group_floors(redis, key, prefix=prefix, stream=stream)
    return TrimPlan(stream, min([cutoff, *floors.values()]), cutoff, floors, stale)


async def apply_trim(redis: Redis, prefix: str, plan: TrimPlan) -> int:
    """Trim to ``plan``; returns the number of entries removed (the caller reports stale
    groups: the workers log them, ``smoltbot trim`` prints them)."""
    STALE_GROUPS.labels(plan.stream).set(len(plan.stale))
    key = f"{prefix}{plan.stream}"
    removed = int(await redis.xtrim(key, minid=format_id(plan.target), approximate=True))
    if removed:
        TRIMMED.labels(plan.stream).inc(removed)
    return removed


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
    plan = await plan_trim(
        redis, prefix, stream, retention_ms=retention_ms, under_pressure=under_pressure
    )
    if plan.stale:
        log.warning(
            "stale consumer groups ignored by the trimmer",
            extra={"stream": stream, "groups": plan.stale},
        )
    return await apply_trim(redis, prefix, plan)


class GroupLag(NamedTuple):
    """How far one consumer group is behind."""

    lag: int
    """Entries not yet read (XINFO GROUPS lag; when Redis cannot tell, length - entries read)."""
    pending: int
    """Entries read and not acked."""
    oldest_pending_age_s: float
    """Age of the oldest pending entry, from its id (0 when none)."""


async def group_lag(redis: Redis, key: str, row: dict[Any, Any]) -> GroupLag:
    """The :class:`GroupLag` of the group described by ``row`` (one row of XINFO GROUPS)."""
    lag = row_field(row, "lag")
    if lag is None:  # unknown after some trims/deletes: fall back to length - entries read
        read = row_field(row, "entries-read")
        lag = max(0, int(await redis.xlen(key)) - int(read or 0))
    pending = int(row_field(row, "pending"))
    age = 0.0
    if pending:
        summary = await redis.xpending(key, row_name(row))
        if summary["min"] is not None:
            age = max(0.0, time.time() - parse_id(summary["min"])[0] / 1000)
    return GroupLag(int(lag), pending, age)


async def export_lag(redis: Redis, key: str, stream: str, group: str) -> None:
    """Set the lag, pending and oldest-pending-age gauges for one (stream, group)."""
    try:
        groups: list[dict[Any, Any]] = await redis.xinfo_groups(key)
    except ResponseError:
        return
    for g in groups:
        if row_name(g) == group:
            state = await group_lag(redis, key, g)
            LAG.labels(stream, group).set(state.lag)
            PENDING.labels(stream, group).set(state.pending)
            OLDEST_PENDING_AGE.labels(stream, group).set(state.oldest_pending_age_s)


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
        name = row_name(c)
        if name == me or int(row_field(c, "pending")) or int(row_field(c, "idle")) < idle_after_ms:
            continue
        await redis.xgroup_delconsumer(key, group, name)
        removed += 1
        CONSUMERS_REMOVED.inc()
        log.info("removed idle consumer", extra={"stream": key, "group": group, "consumer": name})
    return removed
