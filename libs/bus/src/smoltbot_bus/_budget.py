"""The bus byte budget as one producer sees it (architecture §3.2): while the bus streams hold
more than ``SMOLTBOT_BUS_MAX_BYTES``, producers spool instead of growing them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping

from redis.asyncio import Redis
from redis.exceptions import RedisError

from smoltbot_bus._metrics import BUS_BYTES, OVER_BUDGET
from smoltbot_bus._streams import bus_memory

log = logging.getLogger(__name__)

_ENTRY_OVERHEAD = 64
"""Bytes an XADD costs beyond its field values (id, field names, listpack headers), roughly."""


class ByteBudget:
    """Redis's last measurement plus what this producer sent since, so a burst between two
    measurements overshoots the budget by at most one interval's worth."""

    def __init__(
        self,
        redis: Redis,
        prefix: str,
        max_bytes: int | None,
        *,
        interval_s: float = 0.25,
        timeout_s: float = 2.0,
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self.max_bytes = max_bytes
        self._interval_s = interval_s
        self._timeout_s = timeout_s
        self._measured = 0
        self._unmeasured = 0

    @property
    def over(self) -> bool:
        if self.max_bytes is None:
            return False
        return self._measured + self._unmeasured > self.max_bytes

    def count(self, fields: Mapping[bytes, bytes]) -> None:
        """An entry was sent: it counts until the next measurement includes it."""
        self._unmeasured += sum(len(v) for v in fields.values()) + _ENTRY_OVERHEAD

    async def measure(self) -> None:
        used = await asyncio.wait_for(bus_memory(self._redis, self._prefix), self._timeout_s)
        BUS_BYTES.set(used)
        was = self.over
        self._measured, self._unmeasured = used, 0
        OVER_BUDGET.set(int(self.over))
        if self.over != was:
            log.warning(
                "bus byte budget " + ("exceeded; spooling" if self.over else "ok again"),
                extra={"used": used, "budget": self.max_bytes},
            )

    async def run(self, closing: asyncio.Event) -> None:
        """Measure every ``interval_s`` until ``closing``."""
        while not closing.is_set():
            # An unreachable Redis is the flush loop's breaker's business, not the budget's.
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                await self.measure()
            await asyncio.sleep(self._interval_s)
