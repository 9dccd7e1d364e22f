"""Persister metrics. Labels are tables, event types and control kinds: never agent ids."""

from __future__ import annotations

from smoltbot_metrics import Counter, Gauge, Histogram

ROWS_WRITTEN = Counter(
    "smoltbot_persister_rows_written_total",
    "Rows inserted or updated in PostgreSQL (replayed duplicates write nothing)",
    ["table"],
)
EVENTS = Counter(
    "smoltbot_persister_events_total",
    "Events committed to PostgreSQL, by event type",
    ["type"],
)
CONTROL_IGNORED = Counter(
    "smoltbot_persister_control_ignored_total",
    "control.v1 events acknowledged without a database effect (not handled by this version)",
    ["kind"],
)
CARD_CACHE = Counter(
    "smoltbot_persister_card_cache_total",
    "Seeding card:{agent} after an agent's first sight: set, or already present",
    ["result"],
)
BATCH_SECONDS = Histogram(
    "smoltbot_persister_batch_duration_seconds",
    "Time to write one batch (one transaction) and seed the card cache",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
RETENTION_DELETED = Counter(
    "smoltbot_persister_retention_rows_deleted_total",
    "Rows deleted by the retention job (older than SMOLTBOT_RETENTION_DAYS), by table",
    ["table"],
)
RETENTION_RUNS = Counter(
    "smoltbot_persister_retention_runs_total",
    "Retention runs: done, skipped (another replica held the lock) or failed (retried at the"
    " next interval)",
    ["result"],
)
RETENTION_LAST_RUN = Gauge(
    "smoltbot_persister_retention_last_run_timestamp_seconds",
    "Unix time at which the last completed retention run ended",
)
RETENTION_LAST_DURATION = Gauge(
    "smoltbot_persister_retention_last_run_duration_seconds",
    "How long the last completed retention run took",
)
