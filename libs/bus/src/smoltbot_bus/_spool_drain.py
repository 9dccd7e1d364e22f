"""Re-publishing the spool (architecture §3.2): once Redis is usable again, spooled events go
out beside live traffic at a bounded rate, oldest segment first."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from redis.exceptions import RedisError

from smoltbot_bus._spool import Record, Spool

log = logging.getLogger(__name__)


class SpoolDrain:
    """Every ``interval_s``, while ``available()``, re-publishes ``spool`` through ``send`` at
    ``per_s`` records a second; a failure calls ``on_failure`` (the breaker) and waits."""

    def __init__(
        self,
        spool: Spool,
        send: Callable[[list[Record]], Awaitable[None]],
        *,
        available: Callable[[], bool],
        on_failure: Callable[[], None],
        per_s: float = 5000.0,
        interval_s: float = 0.25,
    ) -> None:
        self._spool = spool
        self._send = send
        self._available = available
        self._on_failure = on_failure
        self._per_s = per_s
        self._interval_s = interval_s

    async def run(self, closing: asyncio.Event) -> None:
        while not closing.is_set():
            with contextlib.suppress(TimeoutError):  # a shutdown wakes the loop at once
                await asyncio.wait_for(closing.wait(), self._interval_s)
                return
            if not self._available() or not self._spool.has_data():
                continue
            try:
                sent = await self._spool.drain(
                    self._send_while_available, max_per_s=self._per_s, stop=closing.is_set
                )
                if sent:
                    log.info("spool drained", extra={"events": sent})
            except (RedisError, OSError, TimeoutError) as exc:
                self._on_failure()
                log.warning("spool drain interrupted", extra={"error": str(exc)[:200]})

    async def _send_while_available(self, records: list[Record]) -> None:
        """Stop mid-drain as soon as Redis is known down or the bus is over budget."""
        if not self._available():
            raise TimeoutError("redis unavailable during spool drain")
        await self._send(records)
