"""``smoltbot replay``: hand a range of a stream again to one consumer group.

``smoltbot replay STREAM --group G --from X`` is ``smoltbot replay range ...``; ``smoltbot replay
rewind STREAM GROUP --to X`` stays as it was. How a range reaches one group only is decided in
:mod:`smoltbot_bus._replay` (rewind, or back into the group's pending list) and explained in the
help below.
"""

from __future__ import annotations

import sys

import click
import msgspec
import redis
from redis.asyncio import Redis
from smoltbot_bus import (
    REPLAY_CONSUMER,
    ReplayError,
    ReplayPlan,
    StreamId,
    format_id,
    plan_replay,
    replay,
)
from smoltbot_contracts.streams import stream_key

from smoltbot_cli.bus_tools import (
    STREAM_EPILOG,
    StreamIdParam,
    echo_json,
    progress,
    run_bus,
    settings,
    stream_argument,
    sync_client,
)

_DEFAULT = "range"


class _ReplayGroup(click.Group):
    """``replay STREAM ...`` runs the ``range`` command; a known command name runs that one."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = [_DEFAULT, *args]
        return super().parse_args(ctx, args)


@click.group(
    "replay",
    cls=_ReplayGroup,
    short_help="Hand a range of a stream again to one consumer group.",
    epilog=STREAM_EPILOG,
)
def replay_group() -> None:
    """Hand a range of a stream again to ONE consumer group (sinks are idempotent, so the same
    rows are written again, never duplicated).

    \b
    smoltbot replay STREAM --group G --from ID|TIME [--to ID|TIME] [--dry-run] [--json]
    (short for `smoltbot replay range ...`; see `smoltbot replay range --help`)

    Only the named group is touched: groups of one stream share its entries, never their
    positions or pending lists, so the other groups (e.g. the notifier beside the persister)
    see nothing. Entries are handed again unchanged (same t/id/b/k, same event ids).

    \b
    Examples:
      smoltbot replay verdicts --group persister --from 0 --dry-run
      smoltbot replay verdicts --group persister --from 2026-11-26T10:00:00Z
      smoltbot replay verdicts --group persister --from 2026-11-26T10:00Z --to 2026-11-26T10:05Z
      smoltbot replay rewind exchanges observer --to 0
    """


@replay_group.command(_DEFAULT, epilog=STREAM_EPILOG)
@stream_argument()
@click.option("--group", "-g", required=True, help="The consumer group (e.g. persister).")
@click.option(
    "--from",
    "start",
    required=True,
    type=StreamIdParam(),
    help="First entry: a stream id, 0 for the oldest retained, or an ISO time (UTC if no zone).",
)
@click.option(
    "--to",
    "end",
    type=StreamIdParam(end=True),
    help="Last entry (included; a time includes its whole millisecond). "
    "Default: up to the group's position.",
)
@click.option("--dry-run", is_flag=True, help="Count what would be handed again; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def replay_range(
    *,
    stream: str,
    group: str,
    start: StreamId,
    end: StreamId | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Hand the entries of STREAM from --from to --to again to consumer group --group only.

    How (decided per request, printed, and in --json as "method"):

    \b
    rewind   the range reaches the group's position (no --to, or --to at or past
             the last entry the group was handed): XGROUP SETID moves the group
             back to just before --from (with ENTRIESREAD, so its lag is exact).
             Its consumers read the range again at full speed.
    pending  the range ends before the group's position: a rewind would also
             re-deliver everything after --to, so the range's entries are put
             back into the group's pending list instead (owned by the consumer
             "smoltbot-replay", idle, delivery count 0). The group's reaper takes
             them over on its next pass: SMOLTBOT_<SERVICE>_BATCH_SIZE entries every
             SMOLTBOT_BUS_CLAIM_INTERVAL_S per consumer process. Entries of the
             range still pending are left to their owner.
    none     nothing to hand again: the group has not read the range yet, or all
             of it is still pending (handled anyway); nothing is changed.

    Safe: only the named group is affected and every sink is idempotent. Entries the group
    has not been handed yet are never touched. Only entries inside the stream's retention
    window can be replayed (see `smoltbot streams`). Without a live group (no consumer
    running), the entries are handed over when one starts, if not trimmed by then.

    \b
    Examples:
      smoltbot replay verdicts --group persister --from 0 --dry-run
      smoltbot replay verdicts --group persister --from 2026-11-26T10:00:00Z --json
      smoltbot replay verdicts -g persister --from 1717000000000-0 --to 1717000060000-0
    """
    if end is not None and end < start:
        raise click.BadParameter("--to is before --from", param_hint="--to")

    config = settings()
    prefix = config.stream_prefix

    async def work(client: Redis) -> tuple[ReplayPlan, int]:
        with progress(f"scanning {stream}") as advance:
            plan = await plan_replay(
                client, prefix, stream, group, start=start, end=end, progress=advance
            )
        if dry_run or plan.method == "none":
            return plan, 0
        with progress(f"replaying {stream} to {group}", total=plan.redeliver) as advance:
            return plan, await replay(client, prefix, plan, progress=advance)

    try:
        plan, done = run_bus(config, work)
    except (ReplayError, redis.ResponseError) as exc:
        click.echo(f"smoltbot: cannot replay {stream} to {group}: {exc}", err=True)
        sys.exit(1)
    if not plan.live and plan.method != "none":
        click.echo(
            f"warning: group {group} on {stream} has no live heartbeat (no consumer running?): "
            "the entries are handed over when one starts, if not trimmed by then",
            err=True,
        )
    if as_json:
        echo_json({**msgspec.to_builtins(plan), "dry_run": dry_run, "replayed": done})
        return
    click.echo(_describe(plan, dry_run, done))


_SAID = {
    # method: (done, dry run); {n} entries, {where} "<group> on <stream>", {to} new position
    "rewind": (
        "rewound {where} to {to}: its consumers read {n} entries again",
        "would rewind {where} to {to}: its consumers would read {n} entries again",
    ),
    "pending": (
        "put {n} entries back into the pending list of {where} (consumer {owner}): "
        "its reaper hands them over",
        "would put {n} entries back into the pending list of {where} (consumer {owner})",
    ),
    "none": ("nothing to replay to {where}",) * 2,
}


def _describe(plan: ReplayPlan, dry_run: bool, done: int) -> str:
    """One line for an operator: what was (or would be) handed again, how, and what comes anyway."""
    line = _SAID[plan.method][dry_run].format(
        n=plan.redeliver if dry_run else done,
        where=f"{plan.group} on {plan.stream}",
        to=plan.rewind_to,
        owner=REPLAY_CONSUMER,
    )
    if plan.already_pending:
        line += f"; {plan.already_pending} entries of the range still pending are left as they are"
    if plan.undelivered:
        line += f"; {plan.undelivered} entries of the range not handed yet arrive anyway"
    return line


@replay_group.command("rewind", epilog=STREAM_EPILOG)
@stream_argument()
@click.argument("group")
@click.option(
    "--to",
    "to",
    required=True,
    type=StreamIdParam(),
    help="Stream id (e.g. 1700000000000-0), 0 for the start, or an ISO time (UTC).",
)
def replay_rewind(stream: str, group: str, to: StreamId) -> None:
    """Move GROUP's position on STREAM to --to, so every entry after it is delivered again.

    Everything after --to up to now is re-delivered to GROUP (and to no other group), also
    what it has not read yet. Only entries still inside the stream's retention window can be
    replayed. `smoltbot replay STREAM --group G --from X` does the same for a range, counts
    first and can stop at --to.
    """
    config = settings()
    client = sync_client(config)
    position = format_id(to)
    try:
        client.xgroup_setid(stream_key(config.stream_prefix, stream), group, position)
    except redis.ResponseError as exc:
        click.echo(f"cannot rewind {group} on {stream}: {exc}", err=True)
        sys.exit(1)
    click.echo(f"{group} on {stream} now re-reads entries after {position}")
