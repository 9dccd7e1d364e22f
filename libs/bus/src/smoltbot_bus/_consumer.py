"""Consumer-group loop (architecture §3.2 "Delivery rules").

One task per process does everything in order, so no two pieces of code ever handle the same
entry at once inside a process:

1. create the groups (idempotent), then drain this consumer's own pending entries;
2. loop: every ``claim_interval_s`` take over entries idle longer than ``min_idle_ms`` from any
   consumer (dead-lettering those delivered ``max_deliveries`` times); read priority streams
   without blocking, then all streams with a short BLOCK; hand the batch to the handler;
3. publish the handler's outputs and XACK the inputs in one MULTI, so "published downstream"
   and "acked upstream" happen together or not at all.

A batch that raises is retried message by message so one poison entry cannot hold back good
ones. Undecodable entries and :class:`InvalidEvent` go to ``dlq:<stream>`` at once (XADD then
XACK, atomically); other failures stay pending and are retried until ``max_deliveries``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Sequence
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError
from smoltbot_contracts.codec import DecodeError, decode_fields, entry_header, to_fields
from smoltbot_contracts.streams import BODY_STREAMS, dlq_key, stream_key
from smoltbot_health import Health
from smoltbot_logging import bind_event

from smoltbot_bus._crypto import EventCipher
from smoltbot_bus._metrics import BATCH_SECONDS, ENTRIES
from smoltbot_bus._streams import (
    beat_group,
    bus_memory,
    export_lag,
    remove_idle_consumers,
    trim_stream,
)
from smoltbot_bus._types import (
    ConsumerConfig,
    Delivery,
    Handler,
    InvalidEvent,
    Output,
    Retryable,
)

log = logging.getLogger(__name__)

_Raw = tuple[str, str, dict[bytes, bytes] | None]  # (logical stream, entry id, fields)

# KEYS[1] stream; ARGV group, consumer, ids...: XCLAIM (JUSTID, idle reset) only the ids that
# are still pending for this consumer.
_RECLAIM_OWN = """
local owned = {}
for i = 3, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1, ARGV[2])
  if #p > 0 then owned[#owned + 1] = ARGV[i] end
end
if #owned > 0 then
  redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, unpack(owned), 'JUSTID')
end
return #owned
"""
_LAST_ERRORS_MAX = 10_000


def _s(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Consumer:
    """Consumes ``config.streams`` as group ``config.group`` and feeds ``handler``."""

    def __init__(
        self,
        redis: Redis,
        prefix: str,
        config: ConsumerConfig,
        handler: Handler,
        *,
        consumer_name: str,
        health: Health | None = None,
        cipher: EventCipher | None = None,
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._config = config
        self._handler = handler
        self.name = consumer_name
        self._health = health
        self._stop = asyncio.Event()
        self._keys = {s: stream_key(prefix, s) for s in config.streams}
        self._priority = [s for s in config.streams if s.endswith(":priority")]
        self._last_errors: dict[str, str] = {}
        self._next_claim = 0.0
        self._next_housekeeping = 0.0
        self._last_group_beat = 0.0
        self._cipher = cipher or EventCipher(None)
        self._loop_name = f"consume:{config.group}"
        if health is not None:
            health.register_loop(self._loop_name, config.stuck_after_s)

    # ------------------------------------------------------------------ lifecycle

    def stop(self) -> None:
        """Ask the loop to finish the batch in hand, ack it and return."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    async def ensure_groups(self) -> None:
        for key in self._keys.values():
            try:
                await self._redis.xgroup_create(key, self._config.group, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def run(self) -> None:
        """Run until :meth:`stop`; Redis errors are logged and retried with backoff."""
        backoff = 0.1
        started = False
        while not self._stop.is_set():
            self._beat()
            try:
                if not started:
                    await self.ensure_groups()
                    await self._beat_groups()
                    await self._drain_own_pending()
                    started = True
                if time.monotonic() >= self._next_claim:
                    self._next_claim = time.monotonic() + self._config.claim_interval_s
                    await self.claim_idle()
                    await self.export_lag()
                if time.monotonic() >= self._next_housekeeping:
                    self._next_housekeeping = (
                        time.monotonic() + self._config.housekeeping_interval_s
                    )
                    await self.housekeeping()
                batch = await self._read()
                if batch:
                    await self._process(batch)
                backoff = 0.1
            except ResponseError as exc:
                if "NOGROUP" in str(exc):
                    # The stream or group vanished (flushed, restored without AOF, destroyed):
                    # recreate it and carry on instead of retrying a read that cannot succeed.
                    log.error("consumer group missing; recreating", extra={"error": str(exc)[:200]})
                    started = False
                else:
                    log.warning("bus error; retrying", extra={"error": str(exc)[:200]})
                await self._sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            except (RedisError, OSError) as exc:
                log.warning("bus error; retrying", extra={"error": str(exc)[:200]})
                await self._sleep(backoff)
                backoff = min(backoff * 2, 5.0)
        await self._leave()
        log.info("consumer stopped", extra={"group": self._config.group, "consumer": self.name})

    async def _leave(self) -> None:
        """Remove this consumer from its groups when it holds nothing pending."""
        try:
            for key in self._keys.values():
                summary = await self._redis.xpending_range(
                    key, self._config.group, min="-", max="+", count=1, consumername=self.name
                )
                if not summary:
                    await self._redis.xgroup_delconsumer(key, self._config.group, self.name)
        except (RedisError, OSError) as exc:
            log.warning("could not leave the consumer group", extra={"error": str(exc)[:200]})

    async def export_lag(self) -> None:
        """Gauges, plus the group heartbeat that tells trimmers this group is alive."""
        await self._beat_groups()
        for stream, key in self._keys.items():
            await export_lag(self._redis, key, stream, self._config.group)

    async def _beat_groups(self) -> None:
        """Refresh ``hb:<stream>:<group>``: while it exists no trimmer passes this group's floor.

        Called from the main loop and while a batch is held (slow handler, dependency outage),
        so a group that is alive but busy is never mistaken for an abandoned one.
        """
        ttl_ms = self._config.stale_group_s * 1000
        for stream in self._keys:
            await beat_group(self._redis, self._prefix, stream, self._config.group, ttl_ms)
        self._last_group_beat = time.monotonic()

    async def housekeeping(self) -> None:
        """Trim consumed streams and their DLQs; drop long-idle consumers with nothing pending."""
        cfg = self._config
        stale_ms = cfg.stale_group_s * 1000
        # Past 80% of the byte budget, acked entries go even inside the replay window, so
        # producers can stop spooling once consumers have caught up.
        pressure = (
            cfg.max_bytes is not None
            and await bus_memory(self._redis, self._prefix) > 0.8 * cfg.max_bytes
        )
        for stream, key in self._keys.items():
            retention = cfg.body_retention_s if stream in BODY_STREAMS else cfg.retention_s
            await trim_stream(
                self._redis,
                self._prefix,
                stream,
                retention_ms=retention * 1000,
                under_pressure=pressure,
            )
            await self._redis.xtrim(
                dlq_key(self._prefix, stream),
                minid=f"{int(time.time() * 1000) - cfg.dlq_retention_s * 1000}-0",
                approximate=True,
            )
            await remove_idle_consumers(
                self._redis, key, cfg.group, me=self.name, idle_after_ms=stale_ms
            )

    def _beat(self) -> None:
        if self._health is not None:
            self._health.beat(self._loop_name)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    # ------------------------------------------------------------------ reading

    def _parse(self, reply: Any) -> list[_Raw]:
        out: list[_Raw] = []
        if not reply:
            return out
        items = reply.items() if isinstance(reply, dict) else reply
        by_key = {v: k for k, v in self._keys.items()}
        for key, entries in items:
            stream = by_key[_s(key)]
            for entry_id, fields in entries:
                out.append((stream, _s(entry_id), fields or None))
        return out

    async def _read(self) -> list[_Raw]:
        count = self._config.batch_size
        group = self._config.group
        if self._priority:
            reply = await self._redis.xreadgroup(
                group, self.name, {self._keys[s]: ">" for s in self._priority}, count=count
            )
            raw = self._parse(reply)
            if raw:
                return raw
        reply = await self._redis.xreadgroup(
            group,
            self.name,
            dict.fromkeys(self._keys.values(), ">"),
            count=count,
            block=self._config.block_ms,
        )
        return self._parse(reply)

    async def _delivery_counts(self, stream: str, ids: Sequence[str]) -> dict[str, int]:
        if not ids:
            return {}
        rows = await self._redis.xpending_range(
            self._keys[stream],
            self._config.group,
            min=ids[0],
            max=ids[-1],
            count=len(ids),
            consumername=self.name,
        )
        return {_s(r["message_id"]): int(r["times_delivered"]) for r in rows}

    async def _drain_own_pending(self) -> None:
        """Re-handle what this consumer name read but never acked (it restarted mid-batch)."""
        for stream, key in self._keys.items():
            last = "0"
            while not self._stop.is_set():
                reply = await self._redis.xreadgroup(
                    self._config.group, self.name, {key: last}, count=self._config.batch_size
                )
                raw = self._parse(reply)
                if not raw:
                    break
                last = raw[-1][1]
                log.info("re-handling own pending entries", extra={"stream": stream, "n": len(raw)})
                counts = await self._delivery_counts(stream, [r[1] for r in raw])
                await self._process(raw, counts)

    async def claim_idle(self) -> int:
        """Take over entries idle longer than ``min_idle_ms``; dead-letter exhausted ones."""
        handled = 0
        for stream, key in self._keys.items():
            rows: Any = await self._redis.xpending_range(
                key,
                self._config.group,
                min="-",
                max="+",
                count=self._config.batch_size,
                idle=self._config.min_idle_ms,
            )
            if not rows:
                continue
            exhausted = [
                r for r in rows if int(r["times_delivered"]) >= self._config.max_deliveries
            ]
            retry = [r for r in rows if int(r["times_delivered"]) < self._config.max_deliveries]
            for r in exhausted:
                entry_id = _s(r["message_id"])
                found: Any = await self._redis.xrange(key, min=entry_id, max=entry_id)
                fields = found[0][1] if found else None
                reason = self._last_errors.pop(entry_id, "handler kept failing")
                await self._dead_letter(
                    stream,
                    entry_id,
                    fields,
                    f"exceeded {self._config.max_deliveries} deliveries: {reason}",
                    int(r["times_delivered"]),
                )
                handled += 1
            if not retry:
                continue
            counts = {_s(r["message_id"]): int(r["times_delivered"]) + 1 for r in retry}
            claimed: Any = await self._redis.xclaim(
                key,
                self._config.group,
                self.name,
                min_idle_time=self._config.min_idle_ms,
                message_ids=list(counts),
            )
            raw = [(stream, _s(i), f or None) for i, f in claimed]
            lost = set(counts) - {r[1] for r in raw}
            if lost:
                # Trimmed while pending: Redis already dropped them from the PEL.
                ENTRIES.labels(stream, "lost").inc(len(lost))
                log.error("pending entries were trimmed before handling", extra={"n": len(lost)})
            if raw:
                log.info("claimed idle entries", extra={"stream": stream, "n": len(raw)})
                await self._process(raw, counts)
                handled += len(raw)
        return handled

    # ------------------------------------------------------------------ handling

    async def _process(self, raw: list[_Raw], counts: dict[str, int] | None = None) -> None:
        known = counts or {}  # fresh reads (id '>') are first deliveries: count 1

        deliveries: list[Delivery] = []
        for stream, entry_id, fields in raw:
            if fields is None:
                await self._redis.xack(self._keys[stream], self._config.group, entry_id)
                ENTRIES.labels(stream, "lost").inc()
                log.error("pending entry was trimmed before handling", extra={"id": entry_id})
                continue
            try:
                event = decode_fields(fields, self._cipher.open(fields))
            except DecodeError as exc:
                await self._dead_letter(
                    stream, entry_id, fields, f"undecodable: {exc}", known.get(entry_id, 1)
                )
                continue
            deliveries.append(
                Delivery(
                    stream=stream, entry_id=entry_id, event=event, deliveries=known.get(entry_id, 1)
                )
            )
        if not deliveries:
            return
        started = time.perf_counter()
        try:
            outputs = await self._with_heartbeat(deliveries, self._handler(deliveries))
        except Retryable as exc:
            await self._retry_in_place(deliveries, exc)
            return
        except Exception as exc:  # noqa: BLE001 - isolate the failing entry below
            if len(deliveries) == 1:
                await self._failed(deliveries[0], exc)
                return
            log.warning(
                "batch failed; retrying entries one by one",
                extra={"n": len(deliveries), "error": f"{type(exc).__name__}: {exc}"[:300]},
            )
            for delivery in deliveries:
                await self._process_one(delivery)
            return
        await self._commit(outputs, deliveries)
        BATCH_SECONDS.observe(time.perf_counter() - started)

    async def _retry_in_place(self, deliveries: Sequence[Delivery], first: Retryable) -> None:
        """A dependency is down: pause and retry the same batch until it passes or we stop."""
        delay, error = 0.5, first
        while not self._stop.is_set():
            ENTRIES.labels(deliveries[0].stream, "dependency_wait").inc(len(deliveries))
            log.warning(
                "dependency unavailable; holding the batch and retrying",
                extra={"n": len(deliveries), "in_s": delay, "error": str(error)[:200]},
            )
            await self._with_heartbeat(deliveries, self._pause(delay))
            if self._stop.is_set():
                return  # entries stay pending: re-handled on restart or claimed by a peer
            try:
                outputs = await self._with_heartbeat(deliveries, self._handler(deliveries))
            except Retryable as exc:
                error, delay = exc, min(delay * 2, 5.0)
                continue
            except Exception:  # noqa: BLE001 - the dependency is back; isolate as usual
                for delivery in deliveries:
                    await self._process_one(delivery)
                return
            await self._commit(outputs, deliveries)
            return

    async def _pause(self, seconds: float) -> Sequence[Output]:
        await self._sleep(seconds)
        return []

    async def _with_heartbeat(
        self, deliveries: Sequence[Delivery], work: Awaitable[Sequence[Output]]
    ) -> Sequence[Output]:
        """Run a handler call while re-claiming its entries so a slow handler keeps them.

        XCLAIM with JUSTID by the current owner resets the idle time without counting a
        delivery, so the reaper of another consumer never takes over work in progress.
        """
        task = asyncio.ensure_future(work)
        interval = max(self._config.min_idle_ms / 3000, 0.05)
        by_stream: dict[str, list[Any]] = {}
        for d in deliveries:
            by_stream.setdefault(d.stream, []).append(d.entry_id)
        while True:
            done, _ = await asyncio.wait({task}, timeout=interval)
            if done:
                return task.result()
            self._beat()
            with contextlib.suppress(RedisError, OSError):
                for stream, ids in by_stream.items():
                    await self._reclaim_own(stream, ids)
                if time.monotonic() - self._last_group_beat > self._config.claim_interval_s:
                    await self._beat_groups()

    async def _reclaim_own(self, stream: str, ids: list[Any]) -> None:
        """Reset the idle time of the entries this consumer still owns, atomically (a Lua
        script checks the owner and claims in one step), so a heartbeat never takes back an
        entry a peer took over while it was late."""
        await self._redis.eval(
            _RECLAIM_OWN,
            1,
            self._keys[stream],
            self._config.group,
            self.name,
            *ids,
        )

    async def _process_one(self, delivery: Delivery) -> None:
        try:
            outputs = await self._with_heartbeat([delivery], self._handler([delivery]))
        except Retryable as exc:
            await self._retry_in_place([delivery], exc)
            return
        except Exception as exc:  # noqa: BLE001 - recorded, retried or dead-lettered
            await self._failed(delivery, exc)
            return
        await self._commit(outputs, [delivery])

    async def _failed(self, delivery: Delivery, exc: Exception) -> None:
        reason = f"{type(exc).__name__}: {exc}"[:500]
        event_id = getattr(delivery.event, "event_id", None)
        if isinstance(exc, InvalidEvent):
            await self._dead_letter_delivery(delivery, f"invalid: {exc}")
            return
        if delivery.deliveries >= self._config.max_deliveries:
            await self._dead_letter_delivery(
                delivery, f"exceeded {self._config.max_deliveries} deliveries: {reason}"
            )
            return
        with bind_event(event_id):
            log.warning(
                "handler failed; entry stays pending for redelivery",
                extra={
                    "stream": delivery.stream,
                    "deliveries": delivery.deliveries,
                    "error": reason,
                },
            )
        ENTRIES.labels(delivery.stream, "retry_pending").inc()
        if len(self._last_errors) >= _LAST_ERRORS_MAX:
            self._last_errors.clear()
        self._last_errors[delivery.entry_id] = reason

    async def _commit(self, outputs: Sequence[Output], deliveries: Sequence[Delivery]) -> None:
        pipe = self._redis.pipeline(transaction=True)
        for out in outputs:
            fields = self._cipher.seal(out.stream, to_fields(out.event))
            key = stream_key(self._prefix, out.stream)
            pipe.xadd(key, fields, maxlen=out.maxlen, approximate=True)  # type: ignore[arg-type]
            if out.ttl_s is not None:
                pipe.expire(key, out.ttl_s)
        by_stream: dict[str, list[str]] = {}
        for d in deliveries:
            by_stream.setdefault(d.stream, []).append(d.entry_id)
        for stream, ids in by_stream.items():
            pipe.xack(self._keys[stream], self._config.group, *ids)
        await pipe.execute()
        for stream, ids in by_stream.items():
            ENTRIES.labels(stream, "acked").inc(len(ids))
            for i in ids:
                self._last_errors.pop(i, None)

    async def _dead_letter_delivery(self, delivery: Delivery, reason: str) -> None:
        # Re-seal: a body stream's dead letter must stay encrypted at rest like its source.
        fields = self._cipher.seal(delivery.stream, to_fields(delivery.event))
        await self._dead_letter(
            delivery.stream, delivery.entry_id, fields, reason, delivery.deliveries
        )

    async def _dead_letter(
        self,
        stream: str,
        entry_id: str,
        fields: dict[bytes, bytes] | None,
        reason: str,
        deliveries: int,
    ) -> None:
        """XADD to ``dlq:<stream>``, then XACK, in one MULTI (a crash duplicates, never loses)."""
        body = dict(fields or {})
        try:
            event_type, event_id = entry_header(body)
        except DecodeError:
            event_type, event_id = "", ""
        body.update(
            {
                b"reason": reason.encode(),
                b"deliveries": str(deliveries).encode(),
                b"source_stream": stream.encode(),
                b"source_id": entry_id.encode(),
                b"group": self._config.group.encode(),
                b"consumer": self.name.encode(),
                b"failed_at": datetime.now(UTC).isoformat().encode(),
            }
        )
        pipe = self._redis.pipeline(transaction=True)
        pipe.xadd(dlq_key(self._prefix, stream), body)  # type: ignore[arg-type]
        pipe.xack(self._keys[stream], self._config.group, entry_id)
        await pipe.execute()
        ENTRIES.labels(stream, "dead_lettered").inc()
        self._last_errors.pop(entry_id, None)
        with bind_event(event_id or None):
            log.error(
                "entry dead-lettered",
                extra={
                    "stream": stream,
                    "entry_id": entry_id,
                    "event_type": event_type,
                    "reason": reason,
                    "deliveries": deliveries,
                },
            )
