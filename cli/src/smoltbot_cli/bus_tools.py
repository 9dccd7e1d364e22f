"""``smoltbot dlq`` and ``smoltbot replay``: inspect and re-drive dead letters, rewind groups.

Dead-letter bodies can hold prompt-derived data (exchanges and traces carry response bytes and
thinking), so ``dlq list``/``dlq show`` print sizes, not bodies, unless ``--reveal`` is given.
Re-driving is safe because every consumer is idempotent (derived ids, upserts).
"""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime
from typing import Any

import click
import msgspec
import redis
from smoltbot_bus import DeadLetter, EventCipher
from smoltbot_config import CommonSettings, load_settings_or_exit
from smoltbot_contracts.codec import DecodeError, decode_fields
from smoltbot_contracts.streams import ALL_STREAMS, dlq_key, stream_key

from smoltbot_cli.tables import render_table


def _settings() -> CommonSettings:
    return load_settings_or_exit(CommonSettings, "cli")


def _client(settings: CommonSettings) -> Any:
    """A sync Redis client (typed loosely: redis-py's stream reply types are unions of shapes).

    Connecting gives up after a few seconds, so an unreachable Redis is reported, not waited on.
    """
    return redis.Redis.from_url(settings.redis_url, socket_timeout=10, socket_connect_timeout=5)


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


def _streams(stream: str | None) -> list[str]:
    if stream is None:
        return list(ALL_STREAMS)
    if stream not in ALL_STREAMS:
        raise click.BadParameter(f"unknown stream {stream!r}; one of: {', '.join(ALL_STREAMS)}")
    return [stream]


@click.group("dlq")
def dlq_group() -> None:
    """Dead-lettered bus entries: list, show (redacted by default) and re-drive.

    Uses REDIS_URL and SMOLTBOT_STREAM_PREFIX from the environment.
    """


@dlq_group.command("list")
@click.option("--stream", help="Only this stream's DLQ (e.g. exchanges). Default: all.")
@click.option("--limit", default=50, show_default=True, help="Entries per stream, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def dlq_list(stream: str | None, limit: int, as_json: bool) -> None:
    """List dead letters with their reason and delivery count (bodies are never printed)."""
    settings = _settings()
    client = _client(settings)
    rows: list[dict[str, Any]] = []
    for name in _streams(stream):
        for entry_id, fields in client.xrevrange(
            dlq_key(settings.stream_prefix, name), count=limit
        ):
            rows.append(_entry_row(name, entry_id, DeadLetter.from_fields(fields)))
    if as_json:
        click.echo(msgspec.json.encode(rows).decode())
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


@dlq_group.command("show")
@click.argument("stream")
@click.argument("dlq_id")
@click.option(
    "--reveal",
    is_flag=True,
    help="Decode and print the event body (may contain prompt-derived data).",
)
def dlq_show(stream: str, dlq_id: str, reveal: bool) -> None:
    """Show one dead letter. The body is redacted unless --reveal is given."""
    settings = _settings()
    _streams(stream)
    client = _client(settings)
    found = client.xrange(dlq_key(settings.stream_prefix, stream), min=dlq_id, max=dlq_id)
    if not found:
        click.echo(f"no dead letter {dlq_id} on {stream}", err=True)
        sys.exit(1)
    entry_id, fields = found[0]
    letter = DeadLetter.from_fields(fields)
    out: dict[str, Any] = _entry_row(stream, entry_id, letter)
    if reveal:
        cipher = EventCipher.from_settings(settings.event_key, settings.event_keys_retired)
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


@dlq_group.command("redrive")
@click.argument("stream")
@click.option("--id", "ids", multiple=True, help="DLQ entry id to re-drive (repeatable).")
@click.option("--all", "everything", is_flag=True, help="Re-drive every dead letter of STREAM.")
@click.option("--dry-run", is_flag=True, help="Show what would be re-driven; change nothing.")
def dlq_redrive(stream: str, ids: tuple[str, ...], everything: bool, dry_run: bool) -> None:
    """Put dead letters back on their stream (after fixing the cause) and remove them from the DLQ.

    Safe to repeat: consumers are idempotent, so an entry handled twice writes the same rows.
    """
    if not ids and not everything:
        raise click.UsageError("give --id ID (repeatable) or --all")
    settings = _settings()
    _streams(stream)
    client = _client(settings)
    dkey, skey = dlq_key(settings.stream_prefix, stream), stream_key(settings.stream_prefix, stream)
    entries = (
        client.xrange(dkey)
        if everything
        else [e for i in ids for e in client.xrange(dkey, min=i, max=i)]
    )
    missing = set(ids) - {e[0].decode() for e in entries}
    if missing:
        click.echo(f"not found on {stream}'s DLQ: {', '.join(sorted(missing))}", err=True)
        sys.exit(1)
    with click.progressbar(
        entries, label=f"re-driving {len(entries)} to {stream}", file=sys.stderr
    ) as bar:
        for entry_id, fields in bar:
            if dry_run:
                continue
            pipe = client.pipeline(transaction=True)
            pipe.xadd(skey, DeadLetter.from_fields(fields).event_fields())
            pipe.xdel(dkey, entry_id)
            pipe.execute()
    verb = "would re-drive" if dry_run else "re-drove"
    click.echo(f"{verb} {len(entries)} entries to {stream}")


def _to_stream_id(value: str) -> str:
    """A stream id from ``0``, ``<ms>-<seq>``, ``<ms>`` or an ISO-8601 time (UTC if naive)."""
    if value == "0" or re.fullmatch(r"\d+-\d+", value):
        return value
    if value.isdigit():
        return f"{value}-0"
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            "expected a stream id, 0, or an ISO time", param_hint="--to"
        ) from None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return f"{int(when.timestamp() * 1000)}-0"


@click.group("replay")
def replay_group() -> None:
    """Replay a stream through a consumer group (safe: every sink is idempotent)."""


@replay_group.command("rewind")
@click.argument("stream")
@click.argument("group")
@click.option(
    "--to",
    "to",
    required=True,
    help="Stream id (e.g. 1700000000000-0), 0 for the start, or an ISO time (UTC).",
)
def replay_rewind(stream: str, group: str, to: str) -> None:
    """Move GROUP's position on STREAM back so entries after --to are delivered again.

    Only entries still inside the stream's retention window can be replayed.
    """
    settings = _settings()
    _streams(stream)
    to = _to_stream_id(to)
    client = _client(settings)
    try:
        client.xgroup_setid(stream_key(settings.stream_prefix, stream), group, to)
    except redis.ResponseError as exc:
        click.echo(f"cannot rewind {group} on {stream}: {exc}", err=True)
        sys.exit(1)
    click.echo(f"{group} on {stream} now re-reads entries after {to}")
