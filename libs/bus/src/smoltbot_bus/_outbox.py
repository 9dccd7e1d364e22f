"""The publisher's in-process buffer (architecture §3.2): ``enqueue`` only appends, so Redis
never slows the caller; a flush loop sends the head in batches."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable

from smoltbot_resilience import Backoff

from smoltbot_bus._metrics import PUBLISH_BUFFERED, PUBLISH_DROPPED
from smoltbot_bus._spool import Record

log = logging.getLogger(__name__)

Send = Callable[[list[Record]], Awaitable[None]]


class Outbox:
    """Bounded buffer of encoded records, sent head first in batches of ``batch_size``."""

    def __init__(
        self, *, max_buffer: int = 10_000, batch_size: int = 500, linger_s: float = 0.0
    ) -> None:
        self._max_buffer = max_buffer
        self._batch_size = batch_size
        # Waiting this long after a wake-up lets a busy producer fill a batch: one round trip
        # for many events instead of one per event (events are late by at most this much).
        self._linger_s = linger_s
        self._records: deque[Record] = deque()
        self._wake = asyncio.Event()

    def __len__(self) -> int:
        return len(self._records)

    def put(self, record: Record) -> bool:
        """Append; never blocks. False when full: the record is dropped (counted)."""
        stream = record[0]
        if len(self._records) >= self._max_buffer:
            PUBLISH_DROPPED.labels(stream, "buffer_full").inc()
            log.warning("publish buffer full; event dropped", extra={"stream": stream})
            return False
        self._records.append(record)
        PUBLISH_BUFFERED.set(len(self._records))
        self._wake.set()
        return True

    def wake(self) -> None:
        """Let a flush loop waiting for records look again (e.g. to see it should stop)."""
        self._wake.set()

    def take_all(self) -> list[Record]:
        records = list(self._records)
        self._records.clear()
        PUBLISH_BUFFERED.set(0)
        return records

    async def flush(self, send: Send) -> None:
        """Send everything now; a failure raises and leaves the unsent rest buffered."""
        while self._records:
            batch = self._head()
            await send(batch)
            self._drop_head(len(batch))

    async def run(
        self, deliver: Callable[[list[Record]], Awaitable[bool]], closing: asyncio.Event
    ) -> None:
        """Hand the head to ``deliver`` until ``closing``; a batch it could not take (False)
        stays buffered and is offered again after a growing pause."""
        backoff = Backoff(0.05, 2.0)
        while not closing.is_set():
            if not self._records:
                self._wake.clear()
                await self._wake.wait()
                if self._linger_s and len(self._records) < self._batch_size:
                    await asyncio.sleep(self._linger_s)
                continue
            batch = self._head()
            if await deliver(batch):
                self._drop_head(len(batch))
                backoff.reset()
            else:
                await asyncio.sleep(backoff.next())

    def _head(self) -> list[Record]:
        return [self._records[i] for i in range(min(self._batch_size, len(self._records)))]

    def _drop_head(self, n: int) -> None:
        for _ in range(n):
            self._records.popleft()
        PUBLISH_BUFFERED.set(len(self._records))
