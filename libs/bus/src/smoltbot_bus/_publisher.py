"""Buffered, pipelined producer that never lets Redis slow its caller (architecture §3.2).

``enqueue`` only appends to the :class:`~smoltbot_bus._outbox.Outbox` (the event is encoded, and
sealed when a key is configured, at once); a background task flushes it as pipelined XADD
batches. When Redis fails, a circuit breaker opens and batches go to the local spool instead of
waiting (:class:`~smoltbot_bus._spool_fallback.SpoolFallback`); the same happens while the bus
is over its :class:`~smoltbot_bus._budget.ByteBudget`. When Redis is healthy again the spool is
re-published beside live traffic at a bounded rate (:class:`~smoltbot_bus._spool_drain.
SpoolDrain`). ``close`` (SIGTERM) flushes, or spools what Redis will not take. Without a spool
the buffer is bounded and overflow is dropped and counted.
"""

from __future__ import annotations

import asyncio
import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError
from smoltbot_contracts import Event
from smoltbot_contracts.codec import to_fields
from smoltbot_resilience import CircuitBreaker

from smoltbot_bus._budget import ByteBudget
from smoltbot_bus._crypto import EventCipher
from smoltbot_bus._metrics import BREAKER_OPEN, PUBLISH_ERRORS
from smoltbot_bus._outbox import Outbox
from smoltbot_bus._sender import Sender
from smoltbot_bus._spool import Record, Spool
from smoltbot_bus._spool_drain import SpoolDrain
from smoltbot_bus._spool_fallback import SpoolFallback

log = logging.getLogger(__name__)

_REDIS_DOWN = (RedisError, OSError, TimeoutError)


class BusUnavailable(Exception):  # noqa: N818 - names the condition callers react to
    """Redis is down (breaker open) or the bus is over budget: a synchronous publish is refused."""


def _show_breaker(is_open: bool) -> None:
    BREAKER_OPEN.set(int(is_open))


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
        linger_s: float = 0.0,
    ) -> None:
        self._cipher = cipher or EventCipher(None)
        self.breaker = breaker or CircuitBreaker(
            threshold=1, cooldown_s=2.0, on_change=_show_breaker
        )
        self._budget = ByteBudget(
            redis, prefix, max_bytes, interval_s=budget_interval_s, timeout_s=send_timeout_s
        )
        self._sender = Sender(redis, prefix, self._budget, send_timeout_s)
        self._outbox = Outbox(max_buffer=max_buffer, batch_size=batch_size, linger_s=linger_s)
        self._fallback = SpoolFallback(spool)
        self._drain = (
            None
            if spool is None
            else SpoolDrain(
                spool,
                self._sender.send,
                available=lambda: self.available,
                on_failure=self.breaker.failure,
                per_s=drain_per_s,
            )
        )
        self._closing = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def buffered(self) -> int:
        return len(self._outbox)

    @property
    def over_budget(self) -> bool:
        return self._budget.over

    @property
    def available(self) -> bool:
        """Whether a synchronous publish is worth trying (Redis up and bus under budget)."""
        return self.breaker.allow() and not self.over_budget

    def encode(self, stream: str, event: Event) -> Record:
        return stream, self._cipher.seal(stream, to_fields(event))

    def enqueue(self, stream: str, event: Event) -> bool:
        """Queue an event; never blocks. False when it had to be dropped (counted)."""
        return self._outbox.put(self.encode(stream, event))

    async def publish(self, stream: str, event: Event) -> str:
        """XADD one event now, for a caller that waits on it. Raises :class:`BusUnavailable`
        at once when Redis is known down or over budget, instead of waiting."""
        if not self.available:
            raise BusUnavailable("bus unavailable (redis down or over budget)")
        try:
            entry_id = await self._sender.send_one(self.encode(stream, event))
        except _REDIS_DOWN as exc:
            self.breaker.failure()
            raise BusUnavailable(str(exc)) from exc
        self.breaker.success()
        return entry_id

    async def flush(self) -> None:
        """Send everything buffered now (raises on Redis failure, leaving the rest buffered)."""
        await self._outbox.flush(self._sender.send)

    async def start(self) -> None:
        if self._tasks:
            return
        self._fallback.open()
        self._tasks = [
            asyncio.create_task(
                self._outbox.run(self._send_or_spool, self._closing), name="publisher-flush"
            )
        ]
        if self._drain is not None:
            task = asyncio.create_task(self._drain.run(self._closing), name="publisher-drain")
            self._tasks.append(task)
        if self._budget.max_bytes is not None:
            task = asyncio.create_task(self._budget.run(self._closing), name="publisher-budget")
            self._tasks.append(task)

    async def close(self, timeout_s: float = 5.0) -> None:
        """Stop background work; send what is buffered, spool what Redis will not take."""
        self._closing.set()
        self._outbox.wake()
        if self._tasks:
            # The flush loop finishes the batch in hand and stops: cancelled mid-send, a batch
            # Redis already took would still be buffered and be sent a second time below.
            # The drain likewise stops between chunks, rewriting its segment to the unsent rest.
            finishing = self._tasks[:2] if self._drain else self._tasks[:1]
            await asyncio.wait(finishing, timeout=timeout_s)
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
        if error is not None and self.buffered:
            await self._fallback.keep_at_shutdown(self._outbox.take_all(), error)
        self._fallback.close()

    async def _send_or_spool(self, batch: list[Record]) -> bool:
        """True when the batch left the buffer (sent, or durably spooled)."""
        if self.available:
            try:
                await self._sender.send(batch)
                self.breaker.success()
                return True
            # redis-py can surface a connection torn down mid-command as a non-Redis error;
            # any failure to send means "Redis unusable now", never a dead flush loop.
            except Exception as exc:  # noqa: BLE001
                self.breaker.failure()
                PUBLISH_ERRORS.inc()
                log.warning("publish failed; redis marked down", extra={"error": str(exc)[:200]})
        return await self._fallback.keep(batch)
