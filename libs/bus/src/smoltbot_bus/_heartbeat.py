"""Heartbeats (architecture §3.2): how a busy consumer tells the others it is alive.

* per entry: while a handler runs, its entries are re-claimed by their owner (XCLAIM JUSTID
  resets the idle time without counting a delivery), so no peer's reaper takes over work in
  progress; a Lua script checks the owner and claims in one step, so a late heartbeat never
  takes back an entry a peer already took over;
* per group: ``hb:<stream>:<group>`` expires ``stale_group_s`` after the last beat; while it
  exists no trimmer passes the group's floor, so a group that is alive but busy (slow handler,
  dependency outage) is never mistaken for an abandoned one.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError

from smoltbot_bus._entries import Member, ids_by_stream
from smoltbot_bus._types import Delivery

T = TypeVar("T")

# KEYS[1] stream; ARGV group, consumer, ids...: XCLAIM (JUSTID, idle reset) only the ids that
# are still pending for this consumer. The whole command is one table unpacked last: Lua expands
# a call's last argument only, so ``unpack(ids), 'JUSTID'`` would claim just the first id.
_RECLAIM_OWN = """
local claim = {'XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0}
local owned = 0
for i = 3, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1, ARGV[2])
  if #p > 0 then
    owned = owned + 1
    claim[#claim + 1] = ARGV[i]
  end
end
if owned > 0 then
  claim[#claim + 1] = 'JUSTID'
  redis.call(unpack(claim))
end
return owned
"""


def heartbeat_key(prefix: str, stream: str, group: str) -> str:
    return f"{prefix}hb:{stream}:{group}"


async def beat_group(redis: Redis, prefix: str, stream: str, group: str, ttl_ms: int) -> None:
    """Mark ``group`` live on ``stream`` for ``ttl_ms``."""
    await redis.set(heartbeat_key(prefix, stream, group), str(int(time.time())), px=ttl_ms)


class Heartbeat:
    """One consumer's heartbeats: its groups' liveness keys and its entries' idle times."""

    def __init__(self, member: Member, *, on_beat: Callable[[], None] = lambda: None) -> None:
        self._member = member
        self._on_beat = on_beat
        self._last_group_beat = 0.0

    async def beat_groups(self) -> None:
        """Refresh ``hb:<stream>:<group>`` for every consumed stream."""
        m = self._member
        ttl_ms = m.config.stale_group_s * 1000
        for stream in m.config.streams:
            await beat_group(m.redis, m.prefix, stream, m.group, ttl_ms)
        self._last_group_beat = time.monotonic()

    async def reclaim_own(self, stream: str, entry_ids: Sequence[str]) -> int:
        """Reset the idle time of those entries this consumer still owns; returns how many."""
        m = self._member
        owned = await m.redis.eval(_RECLAIM_OWN, 1, m.key(stream), m.group, m.name, *entry_ids)
        return int(owned)

    async def run(self, deliveries: Sequence[Delivery], work: Awaitable[T]) -> T:
        """Await ``work`` (a handler call, or a pause while a batch is held) while keeping its
        entries claimed, the liveness probe fed and, past ``claim_interval_s``, the groups live.
        A failed beat is skipped: the next one tries again."""
        task = asyncio.ensure_future(work)
        config = self._member.config
        interval = max(config.min_idle_ms / 3000, 0.05)
        by_stream = ids_by_stream(deliveries)
        while True:
            done, _ = await asyncio.wait({task}, timeout=interval)
            if done:
                return task.result()
            self._on_beat()
            with contextlib.suppress(RedisError, OSError):
                for stream, ids in by_stream.items():
                    await self.reclaim_own(stream, ids)
                if time.monotonic() - self._last_group_beat > config.claim_interval_s:
                    await self.beat_groups()
