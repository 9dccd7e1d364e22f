"""Where the publisher's batches go when Redis will not take them (architecture §3.2): the local
spool, durable and re-published later; without a spool they stay in the bounded buffer."""

from __future__ import annotations

import logging

from smoltbot_bus._metrics import PUBLISH_DROPPED
from smoltbot_bus._spool import Record, Spool

log = logging.getLogger(__name__)


class SpoolFallback:
    """Writes batches to ``spool`` (if any); what does not fit under its cap is counted."""

    def __init__(self, spool: Spool | None) -> None:
        self._spool = spool

    def open(self) -> None:
        if self._spool is not None:
            self._spool.open()

    def close(self) -> None:
        if self._spool is not None:
            self._spool.close()

    async def keep(self, batch: list[Record]) -> bool:
        """True when the batch left memory: spooled, or dropped because the spool is full."""
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

    async def keep_at_shutdown(self, records: list[Record], error: str) -> None:
        """Last chance for what Redis did not take at shutdown; the rest is dropped (counted)."""
        kept = 0
        if self._spool is not None:
            try:
                kept = await self._spool.append(records)
            except OSError as exc:
                log.exception("spool write failed at shutdown", extra={"error": str(exc)})
        for stream, _ in records[kept:]:
            PUBLISH_DROPPED.labels(stream, "shutdown").inc()
        log.warning(
            "redis unavailable at shutdown",
            extra={"spooled": kept, "dropped": len(records) - kept, "error": error},
        )
