"""Buffered, pipelined producer that never lets Redis slow its caller (architecture §3.2).

``enqueue`` only appends to an in-process buffer (the event is encoded, and sealed when a key is
configured, at once). A background task flushes the buffer as pipelined XADD batches. When Redis
fails, a circuit breaker opens and batches go to the local :class:`Spool` instead of waiting;
the same happens while the bus is over its byte budget. When Redis is healthy again the spool is
drained beside live traffic at a bounded rate. ``close`` (SIGTERM) flushes, or spools what Redis
will not take. Without a spool the buffer is bounded and overflow is dropped and counted.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Sequence

from redis.asyncio import Redis
from redis.exceptions import RedisError
from smoltbot_contracts import Event
from smoltbot_contracts.codec import to_fields
from smoltbot_contracts.streams import stream_key

from smoltbot_bus._breaker import CircuitBreaker
from smoltbot_bus._crypto import EventCipher
from smoltbot_bus._metrics import (
    BUS_BYTES,
    OVER_BUDGET,
    PUBLISH_BUFFERED,
    PUBLISH_DROPPED,
    PUBLISH_ERRORS,
    PUBLISHED,
)
from smoltbot_bus._spool import Record, Spool
from smoltbot_bus._streams import bus_memory

log = logging.getLogger(__name__)

_REDIS_DOWN = (RedisError, OSError, TimeoutError)


class BusUnavailable(Exception):  # noqa: N818 - names the condition callers react to
    """Redis is down (breaker open) or the bus is over budget: a synchronous publish is refused."""


class Publisher:
    """Publishes events to logical streams under ``prefix``."""

    def __init__(
        self,
        redis: Redis,
        prefix: str,
        *,
        spool: Spool | None = None,
        cipher: EventCipher | None = None,
        breaker: CircuitBreaker | None = None,
        max_buffer: int = 10_000,
        batch_size: int = 500,
        send_timeout_s: float = 2.0,
        max_bytes: int | None = None,
        budget_interval_s: float = 0.25,
        drain_per_s: float = 5000.0,
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._spool = spool
        self._cipher = cipher or EventCipher(None)
        self.breaker = breaker or CircuitBreaker(threshold=1, cooldown_s=2.0)
        self._max_buffer = max_buffer
        self._batch_size = batch_size
        self._send_timeout_s = send_timeout_s
        self._max_bytes = max_bytes
        self._budget_interval_s = budget_interval_s
        self._drain_per_s = drain_per_s
        self._buffer: deque[Record] = deque()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self._measured_bytes = 0
        self._unmeasured_bytes = 0  # sent since the last measurement: bounds the overshoot

    # ------------------------------------------------------------------ producer API

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def encode(self, stream: str, event: Event) -> Record:
        return stream, self._cipher.seal(stream, to_fields(event))

    def enqueue(self, stream: str, event: Event) -> bool:
        """Queue an event; never blocks. False when it had to be dropped (counted)."""
        if len(self._buffer) >= self._max_buffer:
            PUBLISH_DROPPED.labels(stream, "buffer_full").inc()
            log.warning("publish buffer full; event dropped", extra={"stream": stream})
            return False
        self._buffer.append(self.encode(stream, event))
        PUBLISH_BUFFERED.set(len(self._buffer))
        self._wake.set()
        return True

    @property
    def over_budget(self) -> bool:
        if self._max_bytes is None:
            return False
        return self._measured_bytes + self._unmeasured_bytes > self._max_bytes

    @property
    def available(self) -> bool:
        """Whether a synchronous publish is worth trying (Redis up and bus under budget)."""
        return self.breaker.allow() and not self.over_budget

    async def publish(self, stream: str, event: Event) -> str:
        """XADD one event now, for a caller that waits on it. Raises :class:`BusUnavailable`
        at once when Redis is known down or over budget, instead of waiting."""
        if not self.available:
            raise BusUnavailable("bus unavailable (redis down or over budget)")
        _, fields = self.encode(stream, event)
        try:
            entry_id = await asyncio.wait_for(
                self._redis.xadd(stream_key(self._prefix, stream), fields),  # type: ignore[arg-type]
                self._send_timeout_s,
            )
        except _REDIS_DOWN as exc:
            self.breaker.failure()
            raise BusUnavailable(str(exc)) from exc
        self.breaker.success()
        self._count_sent(stream, fields)
        return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if self._tasks:
            return
        if self._spool is not None:
            self._spool.open()
        self._tasks = [asyncio.create_task(self._flush_loop(), name="publisher-flush")]
        if self._spool is not None:
            self._tasks.append(asyncio.create_task(self._drain_loop(), name="publisher-drain"))
        if self._max_bytes is not None:
            self._tasks.append(asyncio.create_task(self._budget_loop(), name="publisher-budget"))

    async def close(self, timeout_s: float = 5.0) -> None:
        """Stop background work; send what is buffered, spool what Redis will not take."""
        self._closing = True
        self._wake.set()
        for task in self._tasks:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:  # a background task died: still flush or spool what is left
                log.exception("publisher task had failed", extra={"task": task.get_name()})
        self._tasks = []
        error: str | None = "redis down or over budget at shutdown"
        if self.available:
            try:
                await asyncio.wait_for(self.flush(), timeout_s)
                error = None
            except _REDIS_DOWN as exc:
                error = str(exc)[:200] or type(exc).__name__
        if error is not None and self._buffer:
            left = list(self._buffer)
            self._buffer.clear()
            kept = 0
            if self._spool is not None:
                try:
                    kept = await self._spool.append(left)
                except OSError as exc:
                    log.exception("spool write failed at shutdown", extra={"error": str(exc)})
            for stream, _ in left[kept:]:
                PUBLISH_DROPPED.labels(stream, "shutdown").inc()
            log.warning(
                "redis unavailable at shutdown",
                extra={"spooled": kept, "dropped": len(left) - kept, "error": error},
            )
        PUBLISH_BUFFERED.set(0)
        if self._spool is not None:
            self._spool.close()

    # ------------------------------------------------------------------ sending

    async def flush(self) -> None:
        """Send everything buffered now (raises on Redis failure, leaving the rest buffered)."""
        while self._buffer:
            batch = [self._buffer[i] for i in range(min(self._batch_size, len(self._buffer)))]
            await self._send(batch)
            for _ in batch:
                self._buffer.popleft()
            PUBLISH_BUFFERED.set(len(self._buffer))

    async def _send(self, records: Sequence[Record]) -> None:
        pipe = self._redis.pipeline(transaction=False)
        for stream, fields in records:
            pipe.xadd(stream_key(self._prefix, stream), fields)  # type: ignore[arg-type]
        await asyncio.wait_for(pipe.execute(), self._send_timeout_s)
        for stream, fields in records:
            self._count_sent(stream, fields)

    def _count_sent(self, stream: str, fields: dict[bytes, bytes]) -> None:
        """Count an XADD towards the budget until the next measurement (bounds the overshoot)."""
        PUBLISHED.labels(stream).inc()
        self._unmeasured_bytes += sum(len(v) for v in fields.values()) + 64

    async def _flush_loop(self) -> None:
        """Send or spool the buffer head forever; a failing disk or Redis never ends the loop."""
        retry_delay = 0.05
        while not self._closing:
            if not self._buffer:
                self._wake.clear()
                await self._wake.wait()
                continue
            batch = [self._buffer[i] for i in range(min(self._batch_size, len(self._buffer)))]
            if await self._send_or_spool(batch):
                for _ in batch:
                    self._buffer.popleft()
                PUBLISH_BUFFERED.set(len(self._buffer))
                retry_delay = 0.05
            else:  # kept in the bounded buffer; retried after a pause
                await asyncio.sleep(retry_delay)
                retry_delay = min(retry_delay * 2, 2.0)

    async def _send_or_spool(self, batch: list[Record]) -> bool:
        """True when the batch left the buffer (sent, or durably spooled)."""
        if self.available:
            try:
                await self._send(batch)
                self.breaker.success()
                return True
            # redis-py can surface a connection torn down mid-command as a non-Redis error;
            # any failure to send means "Redis unusable now", never a dead flush loop.
            except Exception as exc:  # noqa: BLE001
                self.breaker.failure()
                PUBLISH_ERRORS.inc()
                log.warning("publish failed; redis marked down", extra={"error": str(exc)[:200]})
        return await self._spool_batch(batch)

    async def _spool_batch(self, batch: list[Record]) -> bool:
        if self._spool is None:
            return False
        try:
            kept = await self._spool.append(batch)
        except OSError as exc:  # disk full, EIO: keep the events in memory and say so loudly
            log.error("spool write failed; holding events in memory", extra={"error": str(exc)})
            return False
        for stream, _ in batch[kept:]:
            PUBLISH_DROPPED.labels(stream, "spool_full").inc()
        return True

    async def _drain_loop(self) -> None:
        assert self._spool is not None
        spool = self._spool
        while not self._closing:
            await asyncio.sleep(0.25)
            if not self.available or not spool.has_data():
                continue
            try:
                sent = await spool.drain(self._send_spooled, max_per_s=self._drain_per_s)
                if sent:
                    log.info("spool drained", extra={"events": sent})
            except _REDIS_DOWN as exc:
                self.breaker.failure()
                log.warning("spool drain interrupted", extra={"error": str(exc)[:200]})

    async def _send_spooled(self, records: list[Record]) -> None:
        if not self.available:
            raise TimeoutError("redis unavailable during spool drain")
        await self._send(records)

    async def _budget_loop(self) -> None:
        assert self._max_bytes is not None
        while not self._closing:
            try:
                used = await asyncio.wait_for(
                    bus_memory(self._redis, self._prefix), self._send_timeout_s
                )
                BUS_BYTES.set(used)
                was = self.over_budget
                self._measured_bytes, self._unmeasured_bytes = used, 0
                OVER_BUDGET.set(int(self.over_budget))
                if self.over_budget != was:
                    log.warning(
                        "bus byte budget "
                        + ("exceeded; spooling" if self.over_budget else "ok again"),
                        extra={"used": used, "budget": self._max_bytes},
                    )
            except _REDIS_DOWN:
                pass  # the flush loop's breaker handles an unreachable Redis
            await asyncio.sleep(self._budget_interval_s)
