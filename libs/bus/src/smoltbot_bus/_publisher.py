"""Buffered, pipelined producer (DESIGN §3.2 "Producer safety").

``enqueue`` never waits on Redis: events are encoded at once (their bytes are fixed from then
on) and flushed by a background task as pipelined XADD batches. When Redis fails the batch stays
at the head of the buffer and is retried with backoff; when the buffer is full new events are
dropped and counted. (A2 adds the on-disk spool behind the same interface.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque

from redis.asyncio import Redis
from redis.exceptions import RedisError
from smoltbot_contracts import Event, to_fields
from smoltbot_contracts.streams import stream_key

from smoltbot_bus._metrics import PUBLISH_BUFFERED, PUBLISH_DROPPED, PUBLISH_ERRORS, PUBLISHED

log = logging.getLogger(__name__)

_Pending = tuple[str, dict[bytes, bytes]]


class Publisher:
    """Publishes events to logical streams under ``prefix``."""

    def __init__(
        self,
        redis: Redis,
        prefix: str,
        *,
        max_buffer: int = 10_000,
        batch_size: int = 500,
        retry_backoff_s: tuple[float, float] = (0.05, 2.0),
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._max_buffer = max_buffer
        self._batch_size = batch_size
        self._backoff = retry_backoff_s
        self._buffer: deque[_Pending] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._flush_loop(), name="publisher-flush")

    def enqueue(self, stream: str, event: Event) -> bool:
        """Queue an event for publication; False when the buffer is full (the drop is counted)."""
        if len(self._buffer) >= self._max_buffer:
            PUBLISH_DROPPED.labels(stream, "buffer_full").inc()
            log.warning("publish buffer full; event dropped", extra={"stream": stream})
            return False
        self._buffer.append((stream, to_fields(event)))
        PUBLISH_BUFFERED.set(len(self._buffer))
        self._wake.set()
        return True

    async def publish(self, stream: str, event: Event) -> str:
        """XADD one event now (for callers that wait on it); raises on Redis failure."""
        entry_id = await self._redis.xadd(stream_key(self._prefix, stream), to_fields(event))  # type: ignore[arg-type]
        PUBLISHED.labels(stream).inc()
        return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)

    async def flush(self) -> None:
        """Send everything buffered now (raises on Redis failure, leaving the rest buffered)."""
        while self._buffer:
            await self._send_batch()

    async def _send_batch(self) -> None:
        batch = [self._buffer[i] for i in range(min(self._batch_size, len(self._buffer)))]
        pipe = self._redis.pipeline(transaction=False)
        for stream, fields in batch:
            pipe.xadd(stream_key(self._prefix, stream), fields)  # type: ignore[arg-type]
        await pipe.execute()
        for stream, _ in batch:
            self._buffer.popleft()
            PUBLISHED.labels(stream).inc()
        PUBLISH_BUFFERED.set(len(self._buffer))

    async def _flush_loop(self) -> None:
        delay = self._backoff[0]
        while not self._closing:
            if not self._buffer:
                self._wake.clear()
                await self._wake.wait()
                continue
            try:
                await self._send_batch()
                delay = self._backoff[0]
            except (RedisError, OSError) as exc:
                PUBLISH_ERRORS.inc()
                log.warning("publish failed; will retry", extra={"error": str(exc)[:200]})
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._backoff[1])

    async def close(self, timeout_s: float = 5.0) -> None:
        """Stop the flush loop and send what is buffered; count what could not be sent."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            await asyncio.wait_for(self.flush(), timeout_s)
        except (RedisError, OSError, TimeoutError) as exc:
            log.error(
                "events left unsent at shutdown",
                extra={"count": len(self._buffer), "error": str(exc)[:200]},
            )
            for stream, _ in self._buffer:
                PUBLISH_DROPPED.labels(stream, "shutdown").inc()
            self._buffer.clear()
