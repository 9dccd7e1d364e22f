from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import msgspec
from smoltbot_contracts import Event


class InvalidEvent(Exception):  # noqa: N818 - reads as "this event is invalid", by design
    """Raised by a handler for an event that can never succeed: it goes to the DLQ at once."""


class Retryable(Exception):  # noqa: N818 - reads as "this failure is retryable", by design
    """Raised by a handler when a dependency is down (e.g. PostgreSQL): the batch is kept and
    retried in place after a pause, without counting a delivery, so an outage never pushes good
    events towards the DLQ. The entries stay claimed (heartbeat) while the loop waits."""


class Delivery(msgspec.Struct, frozen=True, kw_only=True):
    """One decoded stream entry handed to a handler."""

    stream: str
    """Logical stream name (without the prefix), e.g. ``exchanges``."""
    entry_id: str
    event: Event
    deliveries: int = 1
    """How many times Redis has delivered this entry (1 on first read)."""


class Output(msgspec.Struct, frozen=True):
    """An event a handler wants published; it is XADDed in the same MULTI as the input's XACK.

    ``maxlen``/``ttl_s`` bound streams nobody trims (e.g. a gateway's reply stream, whose
    reader may be gone for good).
    """

    stream: str
    event: Event
    maxlen: int | None = None
    ttl_s: int | None = None


Handler = Callable[[Sequence[Delivery]], Awaitable[Sequence[Output]]]


class ConsumerConfig(msgspec.Struct, frozen=True, kw_only=True):
    """How one service consumes its streams as one consumer group.

    ``streams`` are logical names; names ending in ``:priority`` are read first, without blocking
    (or by a consumer of their own: :meth:`lanes`).
    ``min_idle_ms`` must exceed the slowest legitimate handling (3x the handler timeout), or
    two consumers would work on the same entry.
    """

    group: str
    streams: Sequence[str]
    batch_size: int = 100
    block_ms: int = 1000
    max_deliveries: int = 5
    min_idle_ms: int = 60_000
    claim_interval_s: float = 5.0
    stuck_after_s: float = 300.0
    consumer_name: str | None = None
    # Housekeeping (trimming, lag gauges, idle-consumer removal) for the consumed streams.
    housekeeping_interval_s: float = 30.0
    retention_s: int = 24 * 3600
    body_retention_s: int = 15 * 60
    dlq_retention_s: int = 7 * 24 * 3600
    stale_group_s: int = 30 * 60
    max_bytes: int | None = None

    def lanes(self, consumer_name: str, *, priority_batch_size: int = 8) -> list[ConsumerConfig]:
        """This config as lanes for :meth:`WorkerRuntime.run_consumers`: the ``:priority``
        streams get a consumer of their own (``<consumer_name>:priority``, small batches), so an
        entry someone waits for is never held behind a slow batch of the others. A config
        with only one kind of stream is one lane."""
        priority = [s for s in self.streams if s.endswith(":priority")]
        rest = [s for s in self.streams if not s.endswith(":priority")]
        if not priority or not rest:
            return [self]
        return [
            msgspec.structs.replace(self, streams=rest),
            msgspec.structs.replace(
                self,
                streams=priority,
                batch_size=min(priority_batch_size, self.batch_size),
                consumer_name=f"{consumer_name}:priority",
            ),
        ]
