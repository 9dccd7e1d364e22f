"""Bus metric catalogue: every name the bus exports, in one place."""

from __future__ import annotations

from smoltbot_metrics import FAST_BUCKETS, Counter, Gauge, Histogram

ENTRIES = Counter(
    "smoltbot_bus_entries_total",
    "Stream entries handled by this consumer, by outcome "
    "(acked, dead_lettered, retry_pending, lost = trimmed before it was handled).",
    ["stream", "outcome"],
)
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
