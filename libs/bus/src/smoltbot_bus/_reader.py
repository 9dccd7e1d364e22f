"""Reading (architecture §3.2): which entries this consumer handles next.

* groups are created idempotently, from the start of the stream (``0``);
* priority streams (names ending ``:priority``) are read first without blocking, then every
  stream with a short BLOCK;
* on start, the entries this consumer name read but never acked (it restarted mid-batch) are
  read again, with their delivery counts;
* the reaper takes over entries idle longer than ``min_idle_ms`` from any consumer with
  XPENDING then XCLAIM (not XAUTOCLAIM: the delivery counts must be known first), handing
  exhausted ones back for the dead-letter queue;
* an entry trimmed while pending is acked and counted ``lost``: nothing is left to handle.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NamedTuple

from redis.exceptions import RedisError, ResponseError
from redis.typing import KeyT, StreamIdT

from smoltbot_bus._entries import Entry, Member, text
from smoltbot_bus._metrics import ENTRIES
from smoltbot_bus._policy import FailurePolicy, Pending

log = logging.getLogger(__name__)


class Claim(NamedTuple):
    """What one reaper pass found on a stream."""

    exhausted: list[Entry]
    """Delivered ``max_deliveries`` times already: for the dead-letter queue, not the handler."""
    claimed: list[Entry]
    """Now owned by this consumer, with their delivery counts: for the handler."""


class Reader:
    """Reads the member's streams as that consumer of its group."""

    def __init__(self, member: Member, policy: FailurePolicy) -> None:
        self._redis, self._config, self._name = member.redis, member.config, member.name
        self._policy = policy
        self._keys = {s: member.key(s) for s in member.config.streams}
        self._streams_by_key = {key: s for s, key in self._keys.items()}
        self._priority: dict[KeyT, StreamIdT] = {
            key: ">" for s, key in self._keys.items() if s.endswith(":priority")
        }

    @property
    def streams(self) -> list[str]:
        return list(self._keys)

    async def ensure_groups(self) -> None:
        for key in self._keys.values():
            try:
                await self._redis.xgroup_create(key, self._config.group, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def read(self) -> list[Entry]:
        """The next batch of new entries: priority streams first, then all (blocking)."""
        group, count = self._config.group, self._config.batch_size
        if self._priority:
            reply = await self._redis.xreadgroup(group, self._name, self._priority, count=count)
            if entries := await self._drop_lost(self._parse(reply)):
                return entries
        streams: dict[KeyT, StreamIdT] = dict.fromkeys(self._keys.values(), ">")
        block = self._config.block_ms
        reply = await self._redis.xreadgroup(group, self._name, streams, count=count, block=block)
        return await self._drop_lost(self._parse(reply))

    async def drain_own_pending(
        self, process: Callable[[list[Entry]], Awaitable[None]], stop: asyncio.Event
    ) -> None:
        """Hand this consumer's own pending entries to ``process``, page by page."""
        for stream, key in self._keys.items():
            after = "0"
            while not stop.is_set():
                reply = await self._redis.xreadgroup(
                    self._config.group, self._name, {key: after}, count=self._config.batch_size
                )
                page = self._parse(reply)
                if not page:
                    break
                after = page[-1].entry_id
                log.info(
                    "re-handling own pending entries", extra={"stream": stream, "n": len(page)}
                )
                counts = await self._own_delivery_counts(stream, [e.entry_id for e in page])
                page = [e._replace(deliveries=counts.get(e.entry_id, 1)) for e in page]
                if entries := await self._drop_lost(page):
                    await process(entries)

    async def claim_idle(self, stream: str) -> Claim:
        """One reaper pass over ``stream`` (at most ``batch_size`` entries)."""
        key, group, idle = self._keys[stream], self._config.group, self._config.min_idle_ms
        rows: Any = await self._redis.xpending_range(
            key, group, min="-", max="+", count=self._config.batch_size, idle=idle
        )
        exhausted, retry = self._policy.split_claimable(
            Pending(text(r["message_id"]), int(r["times_delivered"])) for r in rows or []
        )
        dead = [
            Entry(stream, p.entry_id, await self._fetch(key, p.entry_id), p.deliveries)
            for p in exhausted
        ]
        if not retry:
            return Claim(dead, [])
        counts = {p.entry_id: p.deliveries + 1 for p in retry}  # the claim is a delivery
        reply: Any = await self._redis.xclaim(
            key, group, self._name, min_idle_time=idle, message_ids=list(counts)
        )
        page = [Entry(stream, text(i), dict(f or {}), counts[text(i)]) for i, f in reply]
        if lost := set(counts) - {e.entry_id for e in page}:
            # Trimmed while pending: Redis already dropped them from the PEL.
            ENTRIES.labels(stream, "lost").inc(len(lost))
            log.error("pending entries were trimmed before handling", extra={"n": len(lost)})
        claimed = await self._drop_lost(page)
        if claimed:
            log.info("claimed idle entries", extra={"stream": stream, "n": len(claimed)})
        return Claim(dead, claimed)

    async def leave(self) -> None:
        """Remove this consumer from its groups when it holds nothing pending."""
        try:
            for key in self._keys.values():
                mine = await self._redis.xpending_range(
                    key, self._config.group, min="-", max="+", count=1, consumername=self._name
                )
                if not mine:
                    await self._redis.xgroup_delconsumer(key, self._config.group, self._name)
        except (RedisError, OSError) as exc:
            log.warning("could not leave the consumer group", extra={"error": str(exc)[:200]})

    def _parse(self, reply: Any) -> list[Entry]:
        if not reply:
            return []
        items = reply.items() if isinstance(reply, dict) else reply
        return [
            Entry(self._streams_by_key[text(key)], text(entry_id), dict(fields or {}))
            for key, entries in items
            for entry_id, fields in entries
        ]

    async def _own_delivery_counts(self, stream: str, ids: Sequence[str]) -> dict[str, int]:
        rows = await self._redis.xpending_range(
            self._keys[stream],
            self._config.group,
            min=ids[0],
            max=ids[-1],
            count=len(ids),
            consumername=self._name,
        )
        return {text(r["message_id"]): int(r["times_delivered"]) for r in rows}

    async def _fetch(self, key: str, entry_id: str) -> dict[bytes, bytes]:
        found: Any = await self._redis.xrange(key, min=entry_id, max=entry_id)
        return dict(found[0][1]) if found else {}

    async def _drop_lost(self, entries: list[Entry]) -> list[Entry]:
        """Ack and count the entries Redis no longer holds; the others."""
        for entry in entries:
            if not entry.fields:
                await self._redis.xack(self._keys[entry.stream], self._config.group, entry.entry_id)
                ENTRIES.labels(entry.stream, "lost").inc()
                log.error("pending entry was trimmed before handling", extra={"id": entry.entry_id})
        return [e for e in entries if e.fields]
