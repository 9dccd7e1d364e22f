"""``smoltbot dlq``: list, show, re-drive and purge dead letters.

Dead-letter bodies can hold prompt-derived data (exchanges and traces carry response bytes and
thinking), so ``dlq list``/``dlq show`` print sizes, not bodies, unless ``--reveal`` is given.
Re-driving is safe because every consumer is idempotent (derived ids, upserts). Dead letters are
read through :class:`smoltbot_bus.DeadLetter`, the struct the bus writes them with.
"""

from __future__ import annotations

import sys
from typing import Any

import click
import msgspec
from redis.asyncio import Redis
from smoltbot_bus import (
    DeadLetter,
    EventCipher,
    StreamId,
    format_id,
    id_after,
    id_before,
    parse_id,
    range_ids,
    scan_page,
)
from smoltbot_contracts.codec import DecodeError, decode_fields
from smoltbot_contracts.streams import dlq_key, stream_key

from smoltbot_cli.bus_tools import (
    STREAM,
    STREAM_EPILOG,
    StreamIdParam,
    echo_json,
    progress,
    run_bus,
    settings,
    stream_argument,
    streams_or_all,
    sync_client,
)
from smoltbot_cli.tables import render_table


def _entry_row(stream: str, entry_id: bytes, letter: DeadLetter) -> dict[str, Any]:
    """What ``dlq list``/``dlq show`` print of a dead letter: never its body."""
    return {
        "stream": stream,
        "dlq_id": entry_id.decode(),
        "type": letter.event_type,
        "event_id": letter.event_id,
        "reason": letter.reason,
        "deliveries": letter.deliveries,
        "group": letter.group,
        "failed_at": letter.failed_at,
        "source_id": letter.source_id,
        "body_bytes": len(letter.b or b""),
        "encrypted": letter.encrypted,
    }


@click.group("dlq", short_help="Dead letters: list, show, re-drive, purge.", epilog=STREAM_EPILOG)
def dlq_group() -> None:
    """Dead-lettered bus entries: list, show (redacted by default), re-drive and purge.

    An entry goes to its stream's dead-letter queue (dlq:<stream>) when it can never be handled
    (undecodable, or rejected by its consumer as invalid) or after SMOLTBOT_BUS_MAX_DELIVERIES
    failed deliveries. Dead letters keep the event as it was and expire after 7 days. Fix the
    cause, then re-drive; purge what should never be handled.

    Uses REDIS_URL and SMOLTBOT_STREAM_PREFIX from the environment.

    \b
    Examples:
      smoltbot dlq list
      smoltbot dlq show verdicts 1717000000000-0
      smoltbot dlq redrive verdicts --all --dry-run
      smoltbot dlq purge verdicts --before 2026-01-01T00:00:00Z --yes
    """


@dlq_group.command("list", epilog=STREAM_EPILOG)
@click.option(
    "--stream", type=STREAM, help="Only this stream's DLQ (e.g. exchanges). Default: all."
)
@click.option("--limit", default=50, show_default=True, help="Entries per stream, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def dlq_list(stream: str | None, limit: int, as_json: bool) -> None:
    """List dead letters with their reason and delivery count (bodies are never printed).

    Read-only.
    """
    config = settings()
    client = sync_client(config)
    rows: list[dict[str, Any]] = []
    for name in streams_or_all(stream):
        for entry_id, fields in client.xrevrange(dlq_key(config.stream_prefix, name), count=limit):
            rows.append(_entry_row(name, entry_id, DeadLetter.from_fields(fields)))
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no dead letters")
        return
    click.echo(
        render_table(
            ["stream", "dlq_id", "type", "event_id", "deliveries", "reason"],
            [
                [r["stream"], r["dlq_id"], r["type"], r["event_id"], r["deliveries"], r["reason"]]
                for r in rows
            ],
        )
    )


@dlq_group.command("show", epilog=STREAM_EPILOG)
@stream_argument()
@click.argument("dlq_id")
@click.option(
    "--reveal",
    is_flag=True,
    help="Decode and print the event body (may contain prompt-derived data).",
)
def dlq_show(stream: str, dlq_id: str, reveal: bool) -> None:
    """Show one dead letter as JSON. The body is redacted unless --reveal is given.

    Read-only. With --reveal a sealed body (exchanges*, traces*) is opened with
    SMOLTBOT_EVENT_KEY or a key in SMOLTBOT_EVENT_KEYS_RETIRED.
    """
    config = settings()
    client = sync_client(config)
    found = client.xrange(dlq_key(config.stream_prefix, stream), min=dlq_id, max=dlq_id)
    if not found:
        click.echo(f"no dead letter {dlq_id} on {stream}", err=True)
        sys.exit(1)
    entry_id, fields = found[0]
    letter = DeadLetter.from_fields(fields)
    out: dict[str, Any] = _entry_row(stream, entry_id, letter)
    if reveal:
        cipher = EventCipher.from_settings(config.event_key, config.event_keys_retired)
        wire = letter.event_fields()
        try:
            event = decode_fields(wire, cipher.open(wire))
            out["event"] = msgspec.to_builtins(event)
        except DecodeError as exc:
            out["event"] = None
            out["decode_error"] = str(exc)
            out["body_hex"] = (letter.b or b"")[:4096].hex()
    else:
        out["body"] = f"<redacted: {out['body_bytes']} bytes; use --reveal to decode>"
    click.echo(msgspec.json.format(msgspec.json.encode(out), indent=2).decode())


@dlq_group.command("redrive", epilog=STREAM_EPILOG)
@stream_argument()
@click.option("--id", "ids", multiple=True, help="DLQ entry id to re-drive (repeatable).")
@click.option("--all", "everything", is_flag=True, help="Re-drive every dead letter of STREAM.")
@click.option("--dry-run", is_flag=True, help="Show what would be re-driven; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def dlq_redrive(
    stream: str, ids: tuple[str, ...], everything: bool, dry_run: bool, as_json: bool
) -> None:
    """Put dead letters back on STREAM (after fixing the cause) and remove them from the DLQ.

    Each entry goes back with its original fields (t, id, b, k: same event id, still sealed),
    so every consumer group of STREAM handles it again. Safe to repeat: consumers are
    idempotent, so an entry handled twice writes the same rows. An entry that fails again is
    dead-lettered again.

    \b
    Examples:
      smoltbot dlq redrive verdicts --all --dry-run
      smoltbot dlq redrive verdicts --id 1717000000000-0 --id 1717000000001-0
    """
    if not ids and not everything:
        raise click.UsageError("give --id ID (repeatable) or --all")
    config = settings()
    client = sync_client(config)
    dkey, skey = dlq_key(config.stream_prefix, stream), stream_key(config.stream_prefix, stream)
    entries = (
        client.xrange(dkey)
        if everything
        else [e for i in ids for e in client.xrange(dkey, min=i, max=i)]
    )
    missing = set(ids) - {e[0].decode() for e in entries}
    if missing:
        click.echo(f"not found on {stream}'s DLQ: {', '.join(sorted(missing))}", err=True)
        sys.exit(1)
    if not dry_run:
        with progress(f"re-driving to {stream}", total=len(entries)) as advance:
            for entry_id, fields in entries:
                pipe = client.pipeline(transaction=True)
                pipe.xadd(skey, DeadLetter.from_fields(fields).event_fields())
                pipe.xdel(dkey, entry_id)
                pipe.execute()
                advance(1)
    if as_json:
        done = [e[0].decode() for e in entries]
        echo_json({"stream": stream, "dry_run": dry_run, "count": len(done), "dlq_ids": done})
        return
    verb = "would re-drive" if dry_run else "re-drove"
    click.echo(f"{verb} {len(entries)} entries to {stream}")


class _Purge(msgspec.Struct, frozen=True, kw_only=True):
    stream: str
    before: str | None
    """Dead letters with a DLQ id below this go; None with --all."""
    dry_run: bool
    count: int
    """Dead letters purged (with dry_run: that would be)."""


@dlq_group.command("purge", epilog=STREAM_EPILOG)
@stream_argument()
@click.option(
    "--before",
    type=StreamIdParam(),
    help="Only dead letters written before this DLQ id or time (ISO-8601, UTC if no zone).",
)
@click.option("--all", "everything", is_flag=True, help="Every dead letter of STREAM.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--dry-run", is_flag=True, help="Only count what would be purged.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def dlq_purge(
    *,
    stream: str,
    before: StreamId | None,
    everything: bool,
    yes: bool,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Delete dead letters of STREAM for good: all of them (--all) or those written before
    --before.

    Irreversible: the events are gone (re-drive what should be handled first). Asks for
    confirmation, showing how many, unless --yes; --dry-run only counts. With --all, dead
    letters written after the count are kept. Nothing but dlq:STREAM is touched.

    \b
    Examples:
      smoltbot dlq purge verdicts --all --dry-run
      smoltbot dlq purge exchanges --before 2026-01-01T00:00:00Z --yes
      smoltbot dlq purge agents --before 1717000000000-0 --json --yes
    """
    if everything == (before is not None):
        raise click.UsageError("give --before ID|TIME or --all (one of them)")
    config = settings()
    key = dlq_key(config.stream_prefix, stream)

    async def count(client: Redis) -> tuple[StreamId | None, int]:
        bound = before
        if everything:
            last: Any = await client.xrevrange(key, count=1)
            if not last:
                return None, 0
            bound = id_after(parse_id(last[0][0]))  # just after the newest one counted
        assert bound is not None
        n = 0
        with progress(f"counting dead letters of {stream}") as advance:
            last_id, size = id_before(bound), scan_page(stream)
            async for page in range_ids(client, key, (0, 0), last_id, page=size):
                n += len(page)
                advance(len(page))
        return bound, n

    bound, n = run_bus(config, count)
    shown = None if everything or bound is None else format_id(bound)
    if n and not dry_run and not yes:
        click.confirm(
            f"Purge {n} dead letters of {stream}"
            + (f" written before {shown}" if shown else "")
            + " for good?",
            abort=True,
            err=True,
        )
    if n and not dry_run:
        assert bound is not None
        minid = format_id(bound)

        async def purge(client: Redis) -> int:
            return int(await client.xtrim(key, minid=minid, approximate=False))

        n = run_bus(config, purge)
    if as_json:
        echo_json(_Purge(stream=stream, before=shown, dry_run=dry_run, count=n))
        return
    verb = "would purge" if dry_run else "purged"
    click.echo(f"{verb} {n} dead letters of {stream}" + (f" before {shown}" if shown else ""))
