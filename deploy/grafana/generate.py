"""Write the Grafana dashboards in dashboards/ from the panel lists below.

    uv run python deploy/grafana/generate.py          # rewrite dashboards/*.json
    uv run python deploy/grafana/generate.py --check  # exit 1 when a file is out of date

The JSON files are what you import into Grafana; this script is how they are edited (change a
panel here, regenerate, commit both). tests/observability checks that the files are what this
script writes, that every query is valid PromQL (promtool) and that it uses only metrics and
labels the services export (docs/metrics.md).

Conventions: every panel and query uses the ``${datasource}`` variable (no datasource uid is
written down); rates use ``$__rate_interval``; counters are read with rate()/increase(),
histograms through ``_bucket`` (quantiles) or ``_sum``/``_count`` (means); the per-group gauges
(lag, pending, oldest pending age) are exported identically by every replica of a consuming
service, so they are aggregated with max, never sum. ``job`` is the scrape job, one per service.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "dashboards"
SCHEMA_VERSION = 39  # Grafana 10.4 / 11.x
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
RATE = "$__rate_interval"
GRID_WIDTH = 24
VERDICT_COLOURS = {
    "clear": "green",
    "review_needed": "orange",
    "boundary_violation": "red",
    "none": "text",
}


@dataclass
class Query:
    expr: str
    legend: str = ""
    instant: bool = False
    heatmap: bool = False


@dataclass
class Panel:
    title: str
    description: str
    queries: list[Query]
    kind: str = "timeseries"  # timeseries, stat, piechart, heatmap
    unit: str = "short"
    width: int = 12
    height: int = 8
    stack: str = "none"  # none, normal, percent
    thresholds: list[tuple[float, str]] = field(default_factory=list)
    mappings: dict[str, str] = field(default_factory=dict)
    colours: dict[str, str] = field(default_factory=dict)
    decimals: int | None = None


@dataclass
class Row:
    title: str


Item = Panel | Row


def q(expr: str, legend: str = "", *, instant: bool = False, heatmap: bool = False) -> Query:
    return Query(" ".join(expr.split()), legend, instant, heatmap)


def quantiles(metric: str, by: str, legend: str) -> list[Query]:
    """p50/p90/p99 of a histogram, aggregated ``by`` (``le`` added)."""
    group = f"le, {by}" if by else "le"
    return [
        q(
            f"histogram_quantile({p}, sum by ({group}) (rate({metric}_bucket[{RATE}])))",
            f"p{int(p * 100)} {legend}".strip(),
        )
        for p in (0.5, 0.9, 0.99)
    ]


# --------------------------------------------------------------------------------------------
# Gateway and API
# --------------------------------------------------------------------------------------------

GATEWAY: list[Item] = [
    Row("Gateway: at a glance"),
    Panel(
        "Requests/s",
        "Provider calls answered by the gateway (gateway_requests_total).",
        [q(f"sum(rate(gateway_requests_total[{RATE}]))")],
        kind="stat",
        unit="reqps",
        width=4,
        height=4,
    ),
    Panel(
        "5xx share",
        "Share of provider calls answered with a 5xx: the provider's own 5xx, 502 when the "
        "upstream could not be reached, 503 when request bodies in flight fill the gateway's "
        "budget.",
        [
            q(
                f'sum(rate(gateway_requests_total{{status=~"5.."}}[{RATE}])) '
                f"/ sum(rate(gateway_requests_total[{RATE}]))"
            )
        ],
        kind="stat",
        unit="percentunit",
        width=4,
        height=4,
        thresholds=[(0, "green"), (0.01, "orange"), (0.05, "red")],
        decimals=2,
    ),
    Panel(
        "Overhead p99",
        "The gateway's own time, upstream excluded (gateway_overhead_seconds), 99th percentile "
        "over every provider.",
        [
            q(
                "histogram_quantile(0.99, sum by (le) "
                f"(rate(gateway_overhead_seconds_bucket[{RATE}])))"
            )
        ],
        kind="stat",
        unit="s",
        width=4,
        height=4,
        thresholds=[(0, "green"), (0.05, "orange"), (0.1, "red")],
    ),
    Panel(
        "Request p99",
        "Request start to last byte sent (gateway_request_duration_seconds), 99th percentile "
        "over every provider; mostly the provider's time.",
        [
            q(
                "histogram_quantile(0.99, sum by (le) "
                f"(rate(gateway_request_duration_seconds_bucket[{RATE}])))"
            )
        ],
        kind="stat",
        unit="s",
        width=4,
        height=4,
    ),
    Panel(
        "Refusals/s",
        "Calls the gateway answered itself before anything went upstream "
        "(smoltbot_gateway_refusals_total).",
        [q(f"sum(rate(smoltbot_gateway_refusals_total[{RATE}])) or vector(0)")],
        kind="stat",
        unit="reqps",
        width=4,
        height=4,
        thresholds=[(0, "green"), (0.001, "orange")],
    ),
    Panel(
        "Client disconnects/s",
        "Calls cut short because the client went away (recorded as 499).",
        [q(f"sum(rate(smoltbot_gateway_client_disconnects_total[{RATE}])) or vector(0)")],
        kind="stat",
        unit="reqps",
        width=4,
        height=4,
    ),
    Row("Gateway: traffic and errors"),
    Panel(
        "Requests by provider and status",
        "Provider calls answered, by provider and the status the client got (499: the client "
        "left first).",
        [
            q(
                f"sum by (provider, status) (rate(gateway_requests_total[{RATE}]))",
                "{{provider}} {{status}}",
            )
        ],
        unit="reqps",
        stack="normal",
    ),
    Panel(
        "5xx by provider and status",
        "Provider calls that ended in a 5xx. The provider's own errors pass through; 502 means "
        "the gateway could not reach the upstream; 503 comes from the gateway's body budget.",
        [
            q(
                "sum by (provider, status) "
                f'(rate(gateway_requests_total{{status=~"5.."}}[{RATE}]))',
                "{{provider}} {{status}}",
            )
        ],
        unit="reqps",
    ),
    Panel(
        "5xx share by provider",
        "Share of each provider's calls that ended in a 5xx (alert: above 5% for 10 minutes).",
        [
            q(
                "sum by (provider) "
                f'(rate(gateway_requests_total{{status=~"5.."}}[{RATE}])) '
                f"/ sum by (provider) (rate(gateway_requests_total[{RATE}]))",
                "{{provider}}",
            )
        ],
        unit="percentunit",
        thresholds=[(0, "green"), (0.05, "red")],
    ),
    Panel(
        "Gateway refusals by reason",
        "Calls answered by the gateway itself: missing_key (401), bad_path (400), too_large "
        "(413), body_timeout (408), over_budget (503 + Retry-After), contained (403).",
        [
            q(
                f"sum by (reason) (rate(smoltbot_gateway_refusals_total[{RATE}]))",
                "{{reason}}",
            )
        ],
        unit="reqps",
        stack="normal",
    ),
    Panel(
        "Client disconnects and unknown keys by provider",
        "Calls cut short because the client left, and 401/403 answers for keys no accepted "
        "call had used (nothing is provisioned or recorded for those).",
        [
            q(
                f"sum by (provider) (rate(smoltbot_gateway_client_disconnects_total[{RATE}]))",
                "disconnect {{provider}}",
            ),
            q(
                f"sum by (provider) (rate(smoltbot_gateway_unknown_keys_rejected_total[{RATE}]))",
                "unknown key {{provider}}",
            ),
        ],
        unit="reqps",
    ),
    Panel(
        "Agent config answered from memory",
        "Agent-config reads that did not come from Redis: error (Redis failed or was too slow), "
        "backoff (Redis skipped after a failure), invalid (stored config undecodable).",
        [
            q(
                f"sum by (reason) (rate(smoltbot_gateway_config_fallback_total[{RATE}]))",
                "{{reason}}",
            )
        ],
        unit="ops",
    ),
    Row("Gateway: latency"),
    Panel(
        "Gateway overhead p50 / p90 / p99",
        "gateway_overhead_seconds: total minus upstream time (streams: time to first byte minus "
        "the upstream's). The number the gateway is judged by.",
        quantiles("gateway_overhead_seconds", "", ""),
        unit="s",
    ),
    Panel(
        "Gateway overhead p99 by provider and streaming",
        "99th percentile of the gateway's own time per provider, streamed and not.",
        [
            q(
                "histogram_quantile(0.99, sum by (le, provider, streamed) "
                f"(rate(gateway_overhead_seconds_bucket[{RATE}])))",
                "{{provider}} streamed={{streamed}}",
            )
        ],
        unit="s",
        thresholds=[(0, "green"), (0.1, "red")],
    ),
    Panel(
        "Mean gateway overhead by provider",
        "Average of gateway_overhead_seconds (_sum / _count).",
        [
            q(
                f"sum by (provider) (rate(gateway_overhead_seconds_sum[{RATE}])) "
                f"/ sum by (provider) (rate(gateway_overhead_seconds_count[{RATE}]))",
                "{{provider}}",
            )
        ],
        unit="s",
    ),
    Panel(
        "Gateway overhead distribution",
        "Calls per gateway_overhead_seconds bucket over time.",
        [
            q(
                f"sum by (le) (increase(gateway_overhead_seconds_bucket[{RATE}]))",
                "{{le}}",
                heatmap=True,
            )
        ],
        kind="heatmap",
        unit="s",
    ),
    Panel(
        "Request duration p50 / p90 / p99 by provider",
        "gateway_request_duration_seconds: request start to the last byte sent to the client "
        "(upstream time included).",
        quantiles("gateway_request_duration_seconds", "provider", "{{provider}}"),
        unit="s",
        width=24,
    ),
    Row("Gateway: enforce mode (waiting callers)"),
    Panel(
        "Verdict waits by outcome",
        "Calls that held their answer for a verdict (enforce mode, or AIP_INLINE_VERDICT), by "
        "how the wait ended: verdict, timeout (SMOLTBOT_GATEWAY_AIP_TIMEOUT_MS), error (failed "
        "analysis), bus_unavailable (Redis down or over budget). Anything but verdict applies "
        "the failure policy.",
        [
            q(
                f"sum by (outcome) (rate(smoltbot_gateway_verdict_waits_total[{RATE}]))",
                "{{outcome}}",
            )
        ],
        unit="reqps",
        stack="normal",
        colours={"verdict": "green", "timeout": "orange", "error": "red"},
    ),
    Panel(
        "Verdict wait p50 / p90 / p99",
        "smoltbot_gateway_verdict_wait_seconds: publish plus wait for the verdict (observer, "
        "verifier, reply), on top of gateway_overhead_seconds.",
        quantiles("smoltbot_gateway_verdict_wait_seconds", "", ""),
        unit="s",
    ),
    Panel(
        "Enforcement blocks by reason",
        "Answers replaced by the 403 integrity_violation: boundary_violation (the verdict) or "
        "fail_closed (no verdict, failure policy fail_closed).",
        [
            q(
                f"sum by (reason) (rate(smoltbot_gateway_enforcement_blocks_total[{RATE}]))",
                "{{reason}}",
            )
        ],
        unit="reqps",
        stack="normal",
    ),
    Panel(
        "Reply stream: calls waiting, replies, reader errors",
        "Calls waiting right now (smoltbot_gateway_verdicts_waiting), replies read per outcome "
        "(matched, unknown: nobody waits any more, invalid) and failed reads of the reply stream.",
        [
            q("sum(smoltbot_gateway_verdicts_waiting)", "waiting now"),
            q(
                f"sum by (outcome) (rate(smoltbot_gateway_verdict_replies_total[{RATE}]))",
                "replies {{outcome}}/s",
            ),
            q(
                f"sum(rate(smoltbot_gateway_reply_reader_errors_total[{RATE}]))",
                "reader errors/s",
            ),
        ],
    ),
    Row("Gateway: waves and licence"),
    Panel(
        "Injections by wave and provider",
        "Request bodies changed before forwarding: thinking (wave 1) or nudge (wave 3).",
        [
            q(
                f"sum by (wave, provider) (rate(smoltbot_gateway_injections_total[{RATE}]))",
                "{{wave}} {{provider}}",
            )
        ],
        unit="reqps",
        stack="normal",
    ),
    Panel(
        "Nudges: created, delivered, expired, given back",
        "Created by the verifier (per mode) against delivered into requests by the gateway; "
        "expired = pending for over 4 hours; given back = claimed but not carried. Skipped = "
        "boundary violations that made no nudge (strategy, threshold, duplicate).",
        [
            q(
                f"sum by (mode) (rate(smoltbot_verifier_nudges_created_total[{RATE}]))",
                "created {{mode}}",
            ),
            q(f"sum(rate(smoltbot_gateway_nudges_delivered_total[{RATE}]))", "delivered"),
            q(f"sum(rate(smoltbot_gateway_nudges_expired_total[{RATE}]))", "expired"),
            q(
                f"sum by (reason) (rate(smoltbot_gateway_nudges_released_total[{RATE}]))",
                "given back {{reason}}",
            ),
            q(
                f"sum by (reason) (rate(smoltbot_verifier_nudges_skipped_total[{RATE}]))",
                "skipped {{reason}}",
            ),
        ],
        unit="ops",
    ),
    Panel(
        "Licence state",
        "Gateway processes per licence state: valid, grace (7 days after the last good "
        "validation), invalid (provider calls get 403 license_error), unlicensed.",
        [q("sum by (state) (smoltbot_gateway_licence_state)", "{{state}}", instant=True)],
        kind="stat",
        width=24,
    ),
    Row("API"),
    Panel(
        "API requests by route and status",
        "Requests the api handled, by route template (unmatched: no route) and status.",
        [
            q(
                f"sum by (route, status) (rate(smoltbot_api_requests_total[{RATE}]))",
                "{{route}} {{status}}",
            )
        ],
        unit="reqps",
        stack="normal",
    ),
    Panel(
        "API 5xx share",
        "Share of api requests answered with a 5xx (503 on /v1/* while PostgreSQL is down).",
        [
            q(
                f'sum(rate(smoltbot_api_requests_total{{status=~"5.."}}[{RATE}])) '
                f"/ sum(rate(smoltbot_api_requests_total[{RATE}]))",
                "5xx share",
            )
        ],
        unit="percentunit",
        thresholds=[(0, "green"), (0.05, "red")],
    ),
    Panel(
        "API latency p50 / p90 / p99",
        "smoltbot_api_request_duration_seconds over every route.",
        quantiles("smoltbot_api_request_duration_seconds", "", ""),
        unit="s",
    ),
    Panel(
        "API latency p99 by route",
        "99th percentile of smoltbot_api_request_duration_seconds per method and route.",
        [
            q(
                "histogram_quantile(0.99, sum by (le, method, route) "
                f"(rate(smoltbot_api_request_duration_seconds_bucket[{RATE}])))",
                "{{method}} {{route}}",
            )
        ],
        unit="s",
    ),
    Panel(
        "card:{agent} writes by outcome",
        "The api's write-through of card:{agent} after a commit (publish, conscience values, "
        "org-wide rewrite, repair on read): written, same, stale (a newer record was there) "
        "and failed (Redis did not answer; repaired on the agent's next card read).",
        [
            q(
                f"sum by (outcome) (rate(smoltbot_api_card_writes_total[{RATE}]))",
                "{{outcome}}",
            )
        ],
        unit="ops",
        stack="normal",
    ),
    Panel(
        "cfg:{agent} reconcile repairs",
        "Agents the api's reconcile loop repaired: redis (cfg:{agent} missing or older than "
        "its PostgreSQL row, e.g. Redis failed right after a commit or was flushed) and postgres "
        "(a newer cfg:{agent}, e.g. an auto-containment, adopted into the row). A steady redis "
        "rate means write-throughs keep failing.",
        [
            q(
                f"sum by (target) (rate(smoltbot_api_cfg_reconcile_repairs_total[{RATE}]))",
                "{{target}}",
            )
        ],
        unit="ops",
        stack="normal",
    ),
    Panel(
        "API keys: rate limited and unchecked",
        "Requests refused with 429 because their API key used up its rate limit, and requests "
        "let through without a check because Redis did not answer (the limiter fails open; a "
        "steady rate means limits are not enforced).",
        [
            q(f"sum(rate(smoltbot_api_rate_limited_total[{RATE}]))", "429 rate limited"),
            q(
                f"sum(rate(smoltbot_api_rate_limit_fail_open_total[{RATE}]))",
                "unchecked (fail open)",
            ),
        ],
        unit="reqps",
    ),
]

# --------------------------------------------------------------------------------------------
# Pipeline: bus, workers, verification
# --------------------------------------------------------------------------------------------

PIPELINE: list[Item] = [
    Row("Pipeline: at a glance"),
    Panel(
        "Unread entries",
        "Entries every consumer group has yet to read, summed over streams and groups "
        "(smoltbot_bus_lag, max over the replicas of a group).",
        [q("sum(max by (stream, group) (smoltbot_bus_lag))")],
        kind="stat",
        width=4,
        height=4,
        thresholds=[(0, "green"), (1000, "orange"), (10000, "red")],
    ),
    Panel(
        "Oldest pending",
        "Age of the oldest entry read but not acked, over every stream and group.",
        [q("max(smoltbot_bus_oldest_pending_age_seconds)")],
        kind="stat",
        unit="s",
        width=4,
        height=4,
        thresholds=[(0, "green"), (300, "orange"), (900, "red")],
    ),
    Panel(
        "Dead-lettered in range",
        "Entries moved to a dlq:<stream> in the dashboard's time range (a first dead letter "
        "after a restart starts a new series and is not counted by increase()).",
        [
            q(
                "sum(increase(smoltbot_bus_entries_total"
                '{outcome="dead_lettered"}[$__range])) or vector(0)'
            )
        ],
        kind="stat",
        width=4,
        height=4,
        thresholds=[(0, "green"), (1, "red")],
        decimals=0,
    ),
    Panel(
        "Redis breaker",
        "Open while some publisher treats Redis as down and spools its events.",
        [q("max(smoltbot_bus_breaker_open)")],
        kind="stat",
        width=4,
        height=4,
        thresholds=[(0, "green"), (1, "red")],
        mappings={"0": "closed", "1": "OPEN"},
    ),
    Panel(
        "Bus over budget",
        "Set while the bus streams exceed SMOLTBOT_BUS_MAX_BYTES (producers spool).",
        [q("max(smoltbot_bus_over_budget)")],
        kind="stat",
        width=4,
        height=4,
        thresholds=[(0, "green"), (1, "red")],
        mappings={"0": "no", "1": "OVER"},
    ),
    Panel(
        "Verdicts/s",
        "verdict.v1 events produced by the verifier.",
        [q(f"sum(rate(smoltbot_verifier_verdicts_total[{RATE}])) or vector(0)")],
        kind="stat",
        unit="ops",
        width=4,
        height=4,
    ),
    Row("Throughput"),
    Panel(
        "Entries acked by service and stream",
        "Stream entries each consuming service handled and acked (smoltbot_bus_entries_total, "
        "outcome acked). job is the service; each service has one consumer group.",
        [
            q(
                "sum by (job, stream) "
                f'(rate(smoltbot_bus_entries_total{{outcome="acked"}}[{RATE}]))',
                "{{job}} {{stream}}",
            )
        ],
        unit="ops",
    ),
    Panel(
        "Entries not acked, by outcome",
        "dead_lettered (moved to the DLQ), retry_pending (failed, left for redelivery), "
        "dependency_wait (held while a dependency is down, per retry round), lost (trimmed "
        "before it was handled).",
        [
            q(
                "sum by (stream, outcome) "
                f'(rate(smoltbot_bus_entries_total{{outcome!="acked"}}[{RATE}]))',
                "{{stream}} {{outcome}}",
            )
        ],
        unit="ops",
    ),
    Panel(
        "Events published by stream",
        "Events XADDed through the publisher: the gateway's exchanges and agents. The relays "
        "write traces and verdicts in their commit; those show as the next stage's acked "
        "entries.",
        [
            q(
                f"sum by (stream) (rate(smoltbot_bus_published_total[{RATE}]))",
                "{{stream}}",
            )
        ],
        unit="ops",
    ),
    Panel(
        "Persister rows written by table",
        "Rows inserted or updated in PostgreSQL (replayed duplicates write nothing).",
        [
            q(
                f"sum by (table) (rate(smoltbot_persister_rows_written_total[{RATE}]))",
                "{{table}}",
            )
        ],
        unit="ops",
        stack="normal",
    ),
    Panel(
        "Persister events committed by type",
        "Events committed to PostgreSQL, control events acknowledged without a database "
        "effect, and card-cache seeds on an agent's first sight.",
        [
            q(
                f"sum by (type) (rate(smoltbot_persister_events_total[{RATE}]))",
                "{{type}}",
            ),
            q(
                f"sum by (kind) (rate(smoltbot_persister_control_ignored_total[{RATE}]))",
                "ignored {{kind}}",
            ),
            q(
                f"sum by (result) (rate(smoltbot_persister_card_cache_total[{RATE}]))",
                "card cache {{result}}",
            ),
        ],
        unit="ops",
    ),
    Panel(
        "Persister retention: rows deleted by table",
        "Rows the retention job deleted (older than SMOLTBOT_RETENTION_DAYS), and its runs: "
        "done, skipped (another replica held the lock) or failed (retried at the next "
        "interval).",
        [
            q(
                f"sum by (table) (rate(smoltbot_persister_retention_rows_deleted_total[{RATE}]))",
                "{{table}}",
            ),
            q(
                f"sum by (result) (rate(smoltbot_persister_retention_runs_total[{RATE}]))",
                "runs {{result}}",
            ),
        ],
        unit="ops",
    ),
    Panel(
        "Persister retention: last run age and duration",
        "Seconds since the last completed retention run (grows past "
        "SMOLTBOT_RETENTION_INTERVAL_S when runs fail or no replica runs them) and how long "
        "that run took.",
        [
            q(
                "time() - max(smoltbot_persister_retention_last_run_timestamp_seconds)",
                "since last run",
            ),
            q("max(smoltbot_persister_retention_last_run_duration_seconds)", "last duration"),
        ],
        unit="s",
    ),
    Panel(
        "Observer exchanges and parse issues",
        "Exchanges observed (trace: an AP-Trace was built), problems met parsing response "
        "bodies, and exchanges analysed against the default card.",
        [
            q(
                f"sum by (outcome) (rate(smoltbot_observer_exchanges_total[{RATE}]))",
                "{{outcome}}",
            ),
            q(
                f"sum by (issue) (rate(smoltbot_observer_parse_issues_total[{RATE}]))",
                "parse issue {{issue}}",
            ),
            q(
                f"sum(rate(smoltbot_observer_default_card_total[{RATE}]))",
                "default card",
            ),
        ],
        unit="ops",
    ),
    Panel(
        "Notifier events by type and verdict",
        "Events the notifier consumed.",
        [
            q(
                f"sum by (type, verdict) (rate(smoltbot_notifier_events_total[{RATE}]))",
                "{{type}} {{verdict}}",
            )
        ],
        unit="ops",
        stack="normal",
    ),
    Panel(
        "Batch time p50 / p99 by service",
        "Bus: handing a batch to the handler until its outputs were published and inputs "
        "acked. Persister: writing one batch (one transaction) and seeding the card cache.",
        [
            q(
                "histogram_quantile(0.5, sum by (le, job) "
                f"(rate(smoltbot_bus_batch_seconds_bucket[{RATE}])))",
                "p50 {{job}}",
            ),
            q(
                "histogram_quantile(0.99, sum by (le, job) "
                f"(rate(smoltbot_bus_batch_seconds_bucket[{RATE}])))",
                "p99 {{job}}",
            ),
            q(
                "histogram_quantile(0.99, sum by (le) "
                f"(rate(smoltbot_persister_batch_duration_seconds_bucket[{RATE}])))",
                "p99 persister write",
            ),
        ],
        unit="s",
    ),
    Row("Streams: lag and pending"),
    Panel(
        "Lag by stream and group",
        "Entries the group has not read yet: the autoscaling signal (max over the group's "
        "replicas, which all report it).",
        [q("max by (stream, group) (smoltbot_bus_lag)", "{{stream}} / {{group}}")],
    ),
    Panel(
        "Pending by stream and group",
        "Entries read but not acked yet.",
        [q("max by (stream, group) (smoltbot_bus_pending)", "{{stream}} / {{group}}")],
    ),
    Panel(
        "Oldest pending age by stream and group",
        "Age of the oldest unacked entry (0 when none). Alerts past 5 minutes, critical past "
        "the 15-minute replay window of the body streams.",
        [
            q(
                "max by (stream, group) (smoltbot_bus_oldest_pending_age_seconds)",
                "{{stream}} / {{group}}",
            )
        ],
        unit="s",
        thresholds=[(0, "green"), (300, "orange"), (900, "red")],
    ),
    Panel(
        "Stale groups by stream",
        "Groups without a live consumer: the trimmer no longer waits for them.",
        [q("max by (stream) (smoltbot_bus_stale_groups)", "{{stream}}")],
        thresholds=[(0, "green"), (1, "red")],
    ),
    Panel(
        "Trimmed entries and idle consumers removed",
        "Entries removed by the retention trimmer, and idle consumers (nothing pending) "
        "removed from their group.",
        [
            q(f"sum by (stream) (rate(smoltbot_bus_trimmed_total[{RATE}]))", "{{stream}}"),
            q(
                f"sum(rate(smoltbot_bus_idle_consumers_removed_total[{RATE}]))",
                "idle consumers removed",
            ),
        ],
        unit="ops",
    ),
    Panel(
        "Bus memory",
        "Memory used by the bus streams, as last measured (budget: SMOLTBOT_BUS_MAX_BYTES).",
        [q("max(smoltbot_bus_bytes)", "bus streams")],
        unit="bytes",
    ),
    Row("Dead letters and losses"),
    Panel(
        "Dead-lettered entries by service and stream",
        "Entries moved to dlq:<stream> (undecodable, InvalidEvent, or out of deliveries). "
        "See `smoltbot dlq list`.",
        [
            q(
                "sum by (job, stream) "
                f'(rate(smoltbot_bus_entries_total{{outcome="dead_lettered"}}[{RATE}]))',
                "{{job}} {{stream}}",
            )
        ],
        unit="ops",
        thresholds=[(0, "green"), (0.000001, "red")],
    ),
    Panel(
        "Lost entries by service and stream",
        "Pending entries the trimmer removed before they were handled: those events are gone.",
        [
            q(
                "sum by (job, stream) "
                f'(rate(smoltbot_bus_entries_total{{outcome="lost"}}[{RATE}]))',
                "{{job}} {{stream}}",
            )
        ],
        unit="ops",
        thresholds=[(0, "green"), (0.000001, "red")],
    ),
    Row("Publisher health"),
    Panel(
        "Redis breaker and byte budget",
        "1 while a publisher's Redis circuit breaker is open (per process), and while the bus "
        "is over its byte budget.",
        [
            q("max by (job, instance) (smoltbot_bus_breaker_open)", "breaker {{instance}}"),
            q("max(smoltbot_bus_over_budget)", "over budget"),
        ],
        thresholds=[(0, "green"), (1, "red")],
        width=8,
    ),
    Panel(
        "Spooled events",
        "Events written to the local spool because Redis could not take them (breaker open or "
        "bus over budget); re-published once Redis takes them again.",
        [q(f"sum by (job) (rate(smoltbot_bus_spooled_total[{RATE}]))", "{{job}}")],
        unit="ops",
        width=8,
    ),
    Panel(
        "Spool size",
        "Bytes held in each process's local spool (cap: SMOLTBOT_SPOOL_MAX_BYTES; past it "
        "events are dropped).",
        [q("max by (job, instance) (smoltbot_bus_spool_bytes)", "{{instance}}")],
        unit="bytes",
        width=8,
    ),
    Panel(
        "Dropped events",
        "Events lost before the bus: publisher (buffer_full, spool_full, shutdown), spool at "
        "its size cap, gateway buffer full.",
        [
            q(
                f"sum by (stream, reason) (rate(smoltbot_bus_publish_dropped_total[{RATE}]))",
                "publisher {{stream}} {{reason}}",
            ),
            q(
                f"sum by (stream) (rate(smoltbot_bus_spool_dropped_total[{RATE}]))",
                "spool full {{stream}}",
            ),
            q(
                f"sum by (stream) (rate(smoltbot_gateway_events_dropped_total[{RATE}]))",
                "gateway {{stream}}",
            ),
        ],
        unit="ops",
        thresholds=[(0, "green"), (0.000001, "red")],
    ),
    Panel(
        "Publish buffer, errors and torn spool segments",
        "Events waiting in the in-process buffer, failed sends to Redis, and spool segments "
        "whose torn tail was skipped.",
        [
            q("sum by (job) (smoltbot_bus_publish_buffered)", "buffered {{job}}"),
            q(
                f"sum by (job) (rate(smoltbot_bus_publish_errors_total[{RATE}]))",
                "send errors/s {{job}}",
            ),
            q(
                f"sum by (job) (increase(smoltbot_bus_spool_torn_total[{RATE}]))",
                "torn segments {{job}}",
            ),
        ],
    ),
    Row("Verification"),
    Panel(
        "Verdict mix",
        "verdict.v1 events by AIP verdict (none: no checkpoint).",
        [
            q(
                f"sum by (verdict) (rate(smoltbot_verifier_verdicts_total[{RATE}]))",
                "{{verdict}}",
            )
        ],
        unit="ops",
        stack="normal",
        colours=VERDICT_COLOURS,
        width=16,
    ),
    Panel(
        "Verdicts in range",
        "Share of each verdict over the dashboard's time range.",
        [
            q(
                "sum by (verdict) (increase(smoltbot_verifier_verdicts_total[$__range]))",
                "{{verdict}}",
                instant=True,
            )
        ],
        kind="piechart",
        colours=VERDICT_COLOURS,
        width=8,
    ),
    Panel(
        "Analysis failures by reason",
        "Conscience analyses that failed (timeout, backend error, invalid analysis); the "
        "checkpoint then follows SMOLTBOT_ANALYZER_FAILURE_POLICY.",
        [
            q(
                f"sum by (reason) (rate(smoltbot_verifier_analysis_failures_total[{RATE}]))",
                "{{reason}}",
            )
        ],
        unit="ops",
        thresholds=[(0, "green"), (0.000001, "red")],
    ),
    Panel(
        "Gate disagreements",
        "Checkpoints where the deterministic verdict gate overrode the analyzer, per second and "
        "as a share of verdicts.",
        [
            q(
                f"sum(rate(smoltbot_verifier_gate_disagreements_total[{RATE}]))",
                "disagreements/s",
            ),
            q(
                f"sum(rate(smoltbot_verifier_gate_disagreements_total[{RATE}])) "
                f"/ sum(rate(smoltbot_verifier_verdicts_total[{RATE}]))",
                "share of verdicts",
            ),
        ],
    ),
    Panel(
        "Verification errors and default cards",
        "Traces the AAP package could not verify, and traces checked against the default card "
        "because card:{agent} was missing or unreadable.",
        [
            q(
                f"sum(rate(smoltbot_verifier_verification_errors_total[{RATE}]))",
                "verification errors",
            ),
            q(
                f"sum by (reason) (rate(smoltbot_verifier_default_card_total[{RATE}]))",
                "default card {{reason}}",
            ),
        ],
        unit="ops",
        width=24,
    ),
    Panel(
        "Drift alerts and containments",
        "Drift alerts decided by the verifier (aap: AP-Traces drifting from the card; aip: "
        "consecutive non-clear checkpoints in a session), one per streak; and auto-containment "
        "writes to cfg:{agent} by outcome (written: an agent was paused now).",
        [
            q(
                f"sum by (kind) (increase(smoltbot_verifier_drift_alerts_total[{RATE}]))",
                "drift {{kind}}",
            ),
            q(
                f"sum by (outcome) (increase(smoltbot_verifier_containments_total[{RATE}]))",
                "containment {{outcome}}",
            ),
        ],
    ),
    Panel(
        "Concerns by category",
        "Concerns found in analysed checkpoints, by AIP category (prompt_injection, "
        "value_misalignment, autonomy_violation, reasoning_corruption, deceptive_reasoning, "
        "undeclared_intent; other).",
        [
            q(
                f"sum by (category) (rate(smoltbot_verifier_concerns_total[{RATE}]))",
                "{{category}}",
            )
        ],
        unit="ops",
        stack="normal",
    ),
    Panel(
        "Analysis backend",
        "Calls of the LLM analysis backend (SMOLTBOT_ANALYZER_BACKEND) by outcome: ok, timeout, "
        "http_error, invalid, circuit_open (refused at once while the breaker is open), "
        "self_loop (the base URL answered as this gateway); and whether the circuit is open.",
        [
            q(
                f"sum by (backend, outcome) (rate(smoltbot_verifier_analysis_calls_total[{RATE}]))",
                "{{backend}} {{outcome}}",
            ),
            q(
                "max by (backend) (smoltbot_verifier_analysis_circuit_open)",
                "{{backend}} circuit open",
            ),
        ],
    ),
    Panel(
        "Analysis backend latency",
        "p50/p90/p99 of one LLM analysis call per backend; SMOLTBOT_ANALYZER_TIMEOUT_MS caps it.",
        quantiles("smoltbot_verifier_analysis_seconds", "backend", "{{backend}}"),
        unit="s",
    ),
    Panel(
        "Observer decision analysis",
        "The observer's decision analyses by backend (rules, anthropic, openai; the priority "
        "lane is always rules) and outcome: ok, passthrough (nothing to analyse), or why the "
        "fallback analysis stood in (timeout, http_error, invalid, circuit_open, self_loop, "
        "error); and whether the decision backend's circuit is open.",
        [
            q(
                "sum by (backend, outcome) "
                f"(rate(smoltbot_observer_decision_analyses_total[{RATE}]))",
                "{{backend}} {{outcome}}",
            ),
            q(
                "max by (backend) (smoltbot_observer_decision_circuit_open)",
                "{{backend}} circuit open",
            ),
        ],
    ),
    Panel(
        "Observer decision analysis latency",
        "p50/p90/p99 of one decision-analysis LLM call per backend; "
        "SMOLTBOT_OBSERVER_DECISION_TIMEOUT_MS caps it (and a whole batch's analyses).",
        quantiles("smoltbot_observer_decision_seconds", "backend", "{{backend}}"),
        unit="s",
    ),
]

DASHBOARDS: dict[str, tuple[str, str, list[Item]]] = {
    "smoltbot-gateway": (
        "smoltbot / Gateway and API",
        "Gateway latency and own overhead, request rate by provider and status, errors and "
        "refusals; the api's request rate and latency.",
        GATEWAY,
    ),
    "smoltbot-pipeline": (
        "smoltbot / Pipeline",
        "Bus throughput per service, stream lag and pending entries, dead letters, publisher "
        "health, verdict mix and analysis failures.",
        PIPELINE,
    ),
}

# --------------------------------------------------------------------------------------------
# JSON
# --------------------------------------------------------------------------------------------


def _thresholds(steps: list[tuple[float, str]]) -> dict[str, Any]:
    steps = steps or [(0, "green")]
    return {
        "mode": "absolute",
        "steps": [
            {"color": colour, "value": None if i == 0 else value}
            for i, (value, colour) in enumerate(steps)
        ],
    }


def _target(query: Query, ref: str) -> dict[str, Any]:
    target: dict[str, Any] = {
        "datasource": DATASOURCE,
        "editorMode": "code",
        "expr": query.expr,
        "legendFormat": query.legend or "__auto",
        "range": not query.instant,
        "instant": query.instant,
        "refId": ref,
    }
    if query.heatmap:
        target["format"] = "heatmap"
    return target


def _overrides(colours: dict[str, str]) -> list[dict[str, Any]]:
    return [
        {
            "matcher": {"id": "byName", "options": name},
            "properties": [{"id": "color", "value": {"fixedColor": colour, "mode": "fixed"}}],
        }
        for name, colour in colours.items()
    ]


def _mappings(mappings: dict[str, str]) -> list[dict[str, Any]]:
    if not mappings:
        return []
    options = {
        value: {"index": i, "text": text} for i, (value, text) in enumerate(mappings.items())
    }
    return [{"type": "value", "options": options}]


def _panel(panel: Panel, panel_id: int, pos: dict[str, int]) -> dict[str, Any]:
    defaults: dict[str, Any] = {
        "unit": panel.unit,
        "thresholds": _thresholds(panel.thresholds),
        "mappings": _mappings(panel.mappings),
        "color": {"mode": "thresholds" if panel.kind == "stat" else "palette-classic"},
    }
    if panel.decimals is not None:
        defaults["decimals"] = panel.decimals
    options: dict[str, Any]
    if panel.kind == "timeseries":
        defaults["min"] = 0
        defaults["custom"] = {
            "drawStyle": "line",
            "lineWidth": 1,
            "fillOpacity": 20 if panel.stack != "none" else 5,
            "showPoints": "never",
            "spanNulls": False,
            "stacking": {"group": "A", "mode": panel.stack},
            "thresholdsStyle": {"mode": "line" if panel.thresholds else "off"},
        }
        options = {
            "legend": {
                "calcs": ["mean", "max", "lastNotNull"],
                "displayMode": "table",
                "placement": "bottom",
                "showLegend": True,
            },
            "tooltip": {"mode": "multi", "sort": "desc"},
        }
    elif panel.kind == "stat":
        options = {
            "colorMode": "background",
            "graphMode": "area",
            "justifyMode": "auto",
            "orientation": "auto",
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "textMode": "auto",
        }
    elif panel.kind == "piechart":
        options = {
            "displayLabels": ["percent"],
            "legend": {
                "displayMode": "table",
                "placement": "right",
                "showLegend": True,
                "values": ["value", "percent"],
            },
            "pieType": "donut",
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "tooltip": {"mode": "single", "sort": "none"},
        }
    elif panel.kind == "heatmap":
        defaults = {"custom": {"scaleDistribution": {"type": "linear"}}}
        options = {
            "calculate": False,
            "cellGap": 1,
            "color": {"mode": "scheme", "scheme": "Oranges", "steps": 64},
            "rowsFrame": {"layout": "auto"},
            "tooltip": {"mode": "single", "yHistogram": True},
            "yAxis": {"axisPlacement": "left", "unit": panel.unit},
            "legend": {"show": True},
        }
    else:
        raise ValueError(f"unknown panel kind {panel.kind!r}")
    refs = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": pos,
        "fieldConfig": {"defaults": defaults, "overrides": _overrides(panel.colours)},
        "options": options,
        "targets": [_target(query, refs[i]) for i, query in enumerate(panel.queries)],
    }


def _layout(items: list[Item]) -> list[dict[str, Any]]:
    """Place panels left to right in Grafana's 24-column grid, a row header on its own line."""
    out: list[dict[str, Any]] = []
    x = y = line_height = 0
    for panel_id, item in enumerate(items, start=1):
        if isinstance(item, Row):
            y += line_height
            x, line_height = 0, 1
            out.append(
                {
                    "id": panel_id,
                    "type": "row",
                    "title": item.title,
                    "collapsed": False,
                    "gridPos": {"h": 1, "w": GRID_WIDTH, "x": 0, "y": y},
                    "panels": [],
                }
            )
            y += 1
            line_height = 0
            continue
        if x + item.width > GRID_WIDTH:
            y += line_height
            x = line_height = 0
        pos = {"h": item.height, "w": item.width, "x": x, "y": y}
        out.append(_panel(item, panel_id, pos))
        x += item.width
        line_height = max(line_height, item.height)
    return out


def dashboard(uid: str) -> dict[str, Any]:
    title, description, items = DASHBOARDS[uid]
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["smoltbot"],
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "timezone": "",
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "weekStart": "",
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "links": [
            {
                "asDropdown": False,
                "icon": "dashboard",
                "includeVars": True,
                "keepTime": True,
                "tags": ["smoltbot"],
                "targetBlank": False,
                "title": "smoltbot",
                "type": "dashboards",
            }
        ],
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Data source",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                    "includeAll": False,
                    "multi": False,
                    "options": [],
                    "refresh": 1,
                    "regex": "",
                    "skipUrlSync": False,
                }
            ]
        },
        "panels": _layout(items),
    }


def render(uid: str) -> str:
    return json.dumps(dashboard(uid), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    stale = []
    for uid in DASHBOARDS:
        path = OUT / f"{uid}.json"
        text = render(uid)
        if "--check" in argv:
            if not path.exists() or path.read_text() != text:
                stale.append(path.name)
            continue
        OUT.mkdir(exist_ok=True)
        path.write_text(text)
        print(f"wrote {path}")
    if stale:
        print(f"out of date: {', '.join(stale)}; run python {Path(__file__).name}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
