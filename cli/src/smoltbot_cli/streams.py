"""``smoltbot streams`` (what the bus looks like) and ``smoltbot trim`` (the retention trimmer,
once, now).

Both read the bus through the library the workers use (:func:`smoltbot_bus.stream_status`,
:func:`smoltbot_bus.plan_trim` / :func:`smoltbot_bus.apply_trim`), so lag, liveness and trim
points are computed exactly as the workers compute them.
"""

from __future__ import annotations

import click
import msgspec
from redis.asyncio import Redis
from smoltbot_bus import (
    Retention,
    StreamStatus,
    apply_trim,
    format_id,
    id_before,
    plan_trim,
    range_ids,
    scan_page,
    stream_status,
)
from smoltbot_contracts.streams import stream_key

from smoltbot_cli.bus_tools import (
    STREAM_EPILOG,
    echo_json,
    progress,
    run_bus,
    settings,
    stream_argument,
    streams_or_all,
)
from smoltbot_cli.tables import print_rich_table


@click.command(
    "streams",
    short_help="Length, dead letters, lag, pending and liveness of every stream.",
    epilog=STREAM_EPILOG,
)
@stream_argument(required=False)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (stable keys).")
def streams_command(stream: str | None, as_json: bool) -> None:
    """Show every bus stream (or STREAM): its length and dead letters and, per consumer group,
    whether it is live, its consumers, lag, pending entries and oldest pending age.

    Read-only and safe at any time; talks to Redis directly (REDIS_URL, SMOLTBOT_STREAM_PREFIX),
    so it works while the api is down.

    \b
    LENGTH   entries in the stream (within its retention window)
    DLQ      dead letters in dlq:<stream> (see `smoltbot dlq list`)
    LIVE     yes: the group's consumers refresh hb:<stream>:<group>; STALE: no
             consumer for SMOLTBOT_BUS_STALE_GROUP_S, so the trimmer ignores the
             group and it may lose entries it has not read
    LAG      entries the group has not read yet
    PENDING  entries read and not acked (in a handler, or waiting to be retried)
    OLDEST   age of the oldest pending entry

    \b
    Examples:
      smoltbot streams
      smoltbot streams verdicts
      smoltbot streams --json | jq '.streams[] | select(.dlq_length > 0) | .stream'
    """
    config = settings()

    async def work(client: Redis) -> list[StreamStatus]:
        return [
            await stream_status(client, config.stream_prefix, name)
            for name in streams_or_all(stream)
        ]

    statuses = run_bus(config, work)
    if as_json:
        echo_json({"prefix": config.stream_prefix, "streams": statuses})
        return
    rows: list[list[object]] = []
    for s in statuses:
        head = [s.stream, s.length, s.dlq_length]
        for g in s.groups:
            state = "yes" if g.live else "STALE"
            age = _age(g.oldest_pending_age_s) if g.pending else None
            rows.append([*head, g.group, state, len(g.consumers), g.lag, g.pending, age])
        if not s.groups:
            rows.append([*head, None, None, None, None, None, None])
    print_rich_table(
        ["STREAM", "LENGTH", "DLQ", "GROUP", "LIVE", "CONSUMERS", "LAG", "PENDING", "OLDEST"],
        rows,
        title=f"bus streams under prefix {config.stream_prefix!r}",
        numeric=["LENGTH", "DLQ", "CONSUMERS", "LAG", "PENDING", "OLDEST"],
    )


def _age(seconds: float) -> str:
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


class TrimmedStream(msgspec.Struct, frozen=True, kw_only=True):
    stream: str
    length: int
    """Entries before trimming."""
    retention_s: int
    trim_point: str
    """Entries with a smaller id may go."""
    held_by: list[str]
    """Live groups that keep the trim point below the retention cutoff (entries they need)."""
    stale_groups: list[str]
    """Groups without a heartbeat, ignored."""
    removed: int
    """Entries removed; with --dry-run, entries before the trim point (a real run removes up to
    that many: whole nodes only)."""


class TrimReport(msgspec.Struct, frozen=True, kw_only=True):
    dry_run: bool
    under_pressure: bool
    """The bus is above 80 % of SMOLTBOT_BUS_MAX_BYTES: acked entries go inside the window too."""
    streams: list[TrimmedStream]


@click.command(
    "trim",
    short_help="Run the retention trimmer once and report what it removed.",
    epilog=STREAM_EPILOG,
)
@stream_argument(required=False)
@click.option("--dry-run", is_flag=True, help="Show the trim points and counts; remove nothing.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (stable keys).")
def trim_command(stream: str | None, dry_run: bool, as_json: bool) -> None:
    """Run the retention trimmer once, now, on every stream (or STREAM), and report what it
    removed. The workers' housekeeping runs the same code every SMOLTBOT_BUS_TRIM_INTERVAL_S.

    Entries older than the retention window go (SMOLTBOT_BUS_RETENTION_S; for exchanges* and
    traces* SMOLTBOT_BUS_BODY_RETENTION_S); above 80 % of SMOLTBOT_BUS_MAX_BYTES, everything
    acked may go. Never past the first entry a live group still needs (unread, or read and not
    acked): such groups are listed as HELD BY. Stale groups (no heartbeat) are ignored and
    listed. Trimming removes whole nodes (XTRIM MINID ~), so a few entries before the trim point
    may stay until a later run. Dead letters are not touched (see `smoltbot dlq purge`).

    Safe: a live group never loses an entry it has not acked. Run it with the workers'
    environment so the same SMOLTBOT_BUS_* values apply.

    \b
    Examples:
      smoltbot trim --dry-run
      smoltbot trim verdicts
      smoltbot trim --json | jq '.streams[] | {stream, removed}'
    """
    config = settings()
    retention = Retention(config.bus_retention_s, config.bus_body_retention_s, config.bus_max_bytes)
    prefix = config.stream_prefix

    async def work(client: Redis) -> TrimReport:
        pressure = await retention.under_pressure(client, prefix)
        done: list[TrimmedStream] = []
        for name in streams_or_all(stream):
            length = int(await client.xlen(stream_key(prefix, name)))
            plan = await plan_trim(
                client,
                prefix,
                name,
                retention_ms=retention.retention_ms(name),
                under_pressure=pressure,
            )
            if dry_run:
                removed = 0
                with progress(f"counting {name}") as advance:
                    before = id_before(plan.target)
                    key, page_size = stream_key(prefix, name), scan_page(name)
                    async for page in range_ids(client, key, (0, 0), before, page=page_size):
                        removed += len(page)
                        advance(len(page))
            else:
                removed = await apply_trim(client, prefix, plan)
            done.append(
                TrimmedStream(
                    stream=name,
                    length=length,
                    retention_s=retention.retention_ms(name) // 1000,
                    trim_point=format_id(plan.target),
                    held_by=plan.held_by,
                    stale_groups=plan.stale,
                    removed=removed,
                )
            )
        return TrimReport(dry_run=dry_run, under_pressure=pressure, streams=done)

    report = run_bus(config, work)
    if as_json:
        echo_json(report)
        return
    print_rich_table(
        ["STREAM", "LENGTH", "RETENTION", "TRIM POINT", "HELD BY", "STALE", "REMOVED"],
        [
            [
                t.stream,
                t.length,
                _age(t.retention_s),
                t.trim_point,
                ", ".join(t.held_by) or None,
                ", ".join(t.stale_groups) or None,
                f"up to {t.removed}" if dry_run else t.removed,
            ]
            for t in report.streams
        ],
        title="dry run: nothing removed" if dry_run else None,
        caption="byte pressure: acked entries go inside the window"
        if report.under_pressure
        else None,
        numeric=["LENGTH", "REMOVED"],
    )
