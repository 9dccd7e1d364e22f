"""Bus metric catalogue: every name the bus exports, in one place."""

from __future__ import annotations

from collections.abc import Iterable

from smoltbot_metrics import FAST_BUCKETS, Counter, Gauge, Histogram

ENTRIES = Counter(
    "smoltbot_bus_entries_total",
    "Stream entries handled by this consumer, by outcome: acked, dead_lettered, "
    "retry_pending (failed, left pending for redelivery), dependency_wait (held in place "
    "while a dependency is down; counted per retry round) and lost (trimmed before it was "
    "handled).",
    ["stream", "outcome"],
)
ENTRY_OUTCOMES = ("acked", "dead_lettered", "retry_pending", "dependency_wait", "lost")


def zero_entry_counters(streams: Iterable[str]) -> None:
    """Export every (stream, outcome) series at 0 from the start: an alert on the first dead
    letter needs a series that existed before it (``increase()`` cannot see a series' birth)."""
    for stream in streams:
        for outcome in ENTRY_OUTCOMES:
            ENTRIES.labels(stream, outcome)


BATCH_SECONDS = Histogram(
    "smoltbot_bus_batch_seconds",
    "Time from handing a batch to the handler until its outputs were published and acked.",
    buckets=FAST_BUCKETS,
)
PUBLISHED = Counter(
    "smoltbot_bus_published_total", "Events XADDed by this process's publisher.", ["stream"]
)
PUBLISH_DROPPED = Counter(
    "smoltbot_bus_publish_dropped_total",
    "Events the publisher could not keep (buffer full, or still unsent at shutdown).",
    ["stream", "reason"],
)
PUBLISH_BUFFERED = Gauge(
    "smoltbot_bus_publish_buffered", "Events waiting in the publisher's in-process buffer."
)
PUBLISH_ERRORS = Counter(
    "smoltbot_bus_publish_errors_total", "Failed attempts to flush the publish buffer to Redis."
)
SPOOL_RECORDS = Counter(
    "smoltbot_bus_spooled_total",
    "Events written to the local spool because Redis could not take them.",
)
SPOOL_DROPPED = Counter(
    "smoltbot_bus_spool_dropped_total",
    "Events dropped because the spool was at its size cap.",
    ["stream"],
)
SPOOL_TORN = Counter(
    "smoltbot_bus_spool_torn_total", "Spool segments whose torn or corrupt tail was skipped."
)
SPOOL_BYTES = Gauge("smoltbot_bus_spool_bytes", "Bytes currently held in the local spool.")
BREAKER_OPEN = Gauge(
    "smoltbot_bus_breaker_open",
    "1 while the Redis circuit breaker is open (Redis treated as down).",
)
BUS_BYTES = Gauge("smoltbot_bus_bytes", "Memory used by the bus streams, as last measured.")
OVER_BUDGET = Gauge(
    "smoltbot_bus_over_budget", "1 while the bus streams exceed SMOLTBOT_BUS_MAX_BYTES."
)
LAG = Gauge("smoltbot_bus_lag", "Entries not yet read by the consumer group.", ["stream", "group"])
PENDING = Gauge(
    "smoltbot_bus_pending",
    "Entries read but not yet acked by the consumer group.",
    ["stream", "group"],
)
OLDEST_PENDING_AGE = Gauge(
    "smoltbot_bus_oldest_pending_age_seconds",
    "Age of the oldest entry the group has not acked (0 when none).",
    ["stream", "group"],
)
STALE_GROUPS = Gauge(
    "smoltbot_bus_stale_groups",
    "Consumer groups with no live consumer, ignored by the trimmer.",
    ["stream"],
)
TRIMMED = Counter(
    "smoltbot_bus_trimmed_total", "Entries removed by the retention trimmer.", ["stream"]
)
CONSUMERS_REMOVED = Counter(
    "smoltbot_bus_idle_consumers_removed_total",
    "Idle consumers with nothing pending that were removed.",
)
