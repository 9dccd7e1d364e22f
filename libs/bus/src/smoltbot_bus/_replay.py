"""Replay (architecture §3.2): hand a range of a stream again to one consumer group.

Only the named group is touched: groups of one stream share its entries, never their positions
or pending lists. Entries the group has not been handed yet are left alone (they come anyway);
of those it has been handed, every one in the range is handed again, in one of two ways:

* ``rewind`` when the range reaches the group's position (no end, or an end at or after the last
  entry the group was handed): ``XGROUP SETID`` to just before the start, with ``ENTRIESREAD`` so
  the group's lag is exact at once. Its consumers read the range again at full speed.
* ``pending`` when the range ends before the group's position (a bounded range in the past): a
  rewind would re-deliver everything after the range too, so instead the range's entries are
  put back into the group's pending list (``XCLAIM ... FORCE``, one script per page so nothing
  can interleave) under the consumer :data:`REPLAY_CONSUMER`, long idle and with a delivery
  count of 0. The group's reaper takes them over on its next pass and hands them to the handler
  as delivery 1; up to ``batch_size`` entries per pass (``claim_interval_s``) per consumer
  process. Entries of the range already pending are left to their owner (retried anyway).
  Pending entries also hold the trimmer back (a live group's floor), so none is lost meanwhile.

A group that reads on between planning and a rewind gets what it read meanwhile once more too;
harmless like the rest: every sink is idempotent (ids derived from the event id, upserts).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import msgspec
from redis.asyncio import Redis
from redis.exceptions import ResponseError
from smoltbot_contracts.streams import stream_key

from smoltbot_bus._entries import text
from smoltbot_bus._heartbeat import heartbeat_key
from smoltbot_bus._streams import (
    StreamId,
    format_id,
    id_before,
    parse_id,
    range_ids,
    row_field,
    row_name,
    scan_page,
)

REPLAY_CONSUMER = "smoltbot-replay"
"""Owner of the entries a ``pending`` replay puts back, until the group's reaper takes them."""

_IDLE_MS = 10 * 24 * 3600 * 1000
"""Idle time given to those entries: longer than any ``SMOLTBOT_BUS_MIN_IDLE_MS``."""

# KEYS[1] stream; ARGV group, consumer, start, end, count, idle ms. One page of the range: each
# entry not pending in the group goes into its pending list, owned by the consumer, idle, with a
# delivery count of 0. Returns {entries in the page, entries put back, id of the last entry}.
# The XCLAIM is one table unpacked last: Lua expands only a call's last argument.
_PUT_BACK = """
local page = redis.call('XRANGE', KEYS[1], ARGV[3], ARGV[4], 'COUNT', ARGV[5])
local claim = {'XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0}
local n = 0
for _, entry in ipairs(page) do
  local id = entry[1]
  if #redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1) == 0 then
    n = n + 1
    claim[#claim + 1] = id
  end
end
if n > 0 then
  for _, word in ipairs({'IDLE', ARGV[6], 'RETRYCOUNT', '0', 'FORCE', 'JUSTID'}) do
    claim[#claim + 1] = word
  end
  redis.call(unpack(claim))
end
local last = ''
if #page > 0 then last = page[#page][1] end
return {#page, n, last}
"""

Progress = Callable[[int], None]
"""Told how many more entries were scanned or put back."""


class ReplayError(Exception):
    """The replay cannot be planned (no such stream or group)."""


class ReplayPlan(msgspec.Struct, frozen=True, kw_only=True):
    """What a replay of ``[start, end]`` to ``group`` does; :func:`replay` carries it out."""

    stream: str
    group: str
    start: str
    end: str | None
    """Last id of the range (included); None: up to the group's position."""
    position: str
    """The last entry the group had been handed when planned (its last-delivered-id)."""
    method: Literal["rewind", "pending", "none"]
    """How (see the module); ``none``: nothing to hand again (the group has not read the range
    yet, or all of it is still pending)."""
    redeliver: int
    """Entries of the range the group was handed already and will be handed again."""
    undelivered: int
    """Entries of the range the group has not been handed yet: they come anyway."""
    already_pending: int
    """``pending``: entries of the range still pending in the group, left to their owner."""
    live: bool
    """The group has a heartbeat (a consumer runs); a stale group's entries may be trimmed."""
    rewind_to: str | None = None
    """``rewind``: the group's new position."""
    entries_read: int | None = None
    """``rewind``: the group's read counter at its new position (makes the lag exact)."""


async def plan_replay(
    redis: Redis,
    prefix: str,
    stream: str,
    group: str,
    *,
    start: StreamId,
    end: StreamId | None = None,
    progress: Progress | None = None,
) -> ReplayPlan:
    """Count what a replay of ``[start, end]`` to ``group`` would hand again (changes nothing)."""
    key = stream_key(prefix, stream)
    row = await _group_row(redis, key, stream, group)
    position = parse_id(row_field(row, "last-delivered-id"))
    info: dict[str, Any] = await redis.xinfo_stream(key)
    rewind = end is None or end >= position
    scan_end = parse_id(info["last-generated-id"]) if rewind else end
    assert scan_end is not None
    seen = redeliver = undelivered = 0
    async for page in range_ids(redis, key, start, scan_end, page=scan_page(stream)):
        seen += len(page)
        in_range = [i for i in page if end is None or i <= end]
        redeliver += sum(1 for i in in_range if i <= position)
        undelivered += sum(1 for i in in_range if i > position)
        if progress is not None:
            progress(len(page))
    already_pending = 0 if rewind else await _pending_between(redis, key, group, start, scan_end)
    method: Literal["rewind", "pending", "none"] = "rewind" if rewind else "pending"
    if redeliver - already_pending <= 0:
        method = "none"
    return ReplayPlan(
        stream=stream,
        group=group,
        start=format_id(start),
        end=None if end is None else format_id(end),
        position=format_id(position),
        method=method,
        redeliver=redeliver - already_pending,
        undelivered=undelivered,
        already_pending=already_pending,
        live=bool(await redis.exists(heartbeat_key(prefix, stream, group))),
        rewind_to=format_id(id_before(start)) if method == "rewind" else None,
        # Entries after the new position, up to the last one counted, are the ones not read.
        entries_read=int(info["entries-added"]) - seen if method == "rewind" else None,
    )


async def replay(
    redis: Redis, prefix: str, plan: ReplayPlan, *, progress: Progress | None = None
) -> int:
    """Carry out ``plan``; returns how many entries the group will be handed again."""
    key = stream_key(prefix, plan.stream)
    if plan.method == "rewind":
        assert plan.rewind_to is not None
        await redis.xgroup_setid(key, plan.group, plan.rewind_to, entries_read=plan.entries_read)
        if progress is not None:
            progress(plan.redeliver)
        return plan.redeliver
    if plan.method == "none":
        return 0
    assert plan.end is not None
    put_back, lower, page = 0, plan.start, scan_page(plan.stream)
    while True:
        seen, n, last = await redis.eval(
            _PUT_BACK, 1, key, plan.group, REPLAY_CONSUMER, lower, plan.end, page, _IDLE_MS
        )
        put_back += int(n)
        if progress is not None:
            progress(int(n))
        if int(seen) < page:
            return put_back
        lower = "(" + text(last)


async def _group_row(redis: Redis, key: str, stream: str, group: str) -> dict[Any, Any]:
    try:
        rows: list[dict[Any, Any]] = await redis.xinfo_groups(key)
    except ResponseError:
        raise ReplayError(f"stream {stream} does not exist") from None
    for row in rows:
        if row_name(row) == group:
            return row
    names = ", ".join(row_name(r) for r in rows) or "none"
    raise ReplayError(f"no group {group!r} on {stream} (its groups: {names})")


async def _pending_between(
    redis: Redis, key: str, group: str, start: StreamId, end: StreamId
) -> int:
    """How many entries of ``[start, end]`` are pending in ``group``."""
    count, lower = 0, format_id(start)
    while True:
        rows: Any = await redis.xpending_range(
            key, group, min=lower, max=format_id(end), count=1000
        )
        count += len(rows)
        if len(rows) < 1000:
            return count
        lower = "(" + text(rows[-1]["message_id"])
