"""What the bus commands (``streams``, ``trim``, ``dlq``, ``replay``) share: settings, Redis
clients, stream names and ids as arguments, JSON output and the progress bar.

Every bus command talks to Redis directly (``REDIS_URL``, ``SMOLTBOT_STREAM_PREFIX``), never
through the api, so it works while the api is down.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

import click
import msgspec
import redis
from redis.asyncio import Redis
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from smoltbot_bus import MAX_SEQ, StreamId, redis_client
from smoltbot_config import CommonSettings, load_settings_or_exit
from smoltbot_contracts.streams import ALL_STREAMS

T = TypeVar("T")

STREAM = click.Choice(ALL_STREAMS)
"""A logical stream name, as an option's type."""

STREAM_EPILOG = f"STREAM is a logical stream name: {', '.join(ALL_STREAMS)}."
"""The epilog of every command that takes a STREAM."""


def stream_argument(*, required: bool = True) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """The STREAM argument (a logical stream name; the usage line says STREAM, not the list)."""
    metavar = "STREAM" if required else "[STREAM]"
    return click.argument("stream", type=STREAM, metavar=metavar, required=required)


def settings() -> CommonSettings:
    return load_settings_or_exit(CommonSettings, "cli")


def sync_client(config: CommonSettings) -> Any:
    """A sync Redis client (typed loosely: redis-py's stream reply types are unions of shapes).

    Connecting gives up after a few seconds, so an unreachable Redis is reported, not waited on.
    """
    return redis.Redis.from_url(config.redis_url, socket_timeout=10, socket_connect_timeout=5)


def run_bus(config: CommonSettings, work: Callable[[Redis], Awaitable[T]]) -> T:
    """Run ``work`` with an asyncio client made as the bus makes its own, closed afterwards."""

    async def main() -> T:
        client = redis_client(config.redis_url)
        try:
            return await work(client)
        finally:
            await client.aclose()

    return asyncio.run(main())


def streams_or_all(stream: str | None) -> list[str]:
    return list(ALL_STREAMS) if stream is None else [stream]


def echo_json(value: object) -> None:
    """One JSON document on stdout (msgspec structs keep their field order: stable keys)."""
    click.echo(msgspec.json.encode(value).decode())


class StreamIdParam(click.ParamType[StreamId]):
    """A stream id (``1700000000000-0``), a Unix time in ms, ``0``, or an ISO-8601 time (UTC when
    it names no zone). As the end of a range (``end=True``) a time means the end of that
    millisecond, so the range includes every entry written in it."""

    name = "ID|TIME"

    def __init__(self, *, end: bool = False) -> None:
        self.end = end

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> StreamId:
        if isinstance(value, tuple):
            return (int(value[0]), int(value[1]))
        text = str(value).strip()
        sid = _parse_stream_id(text, end=self.end)
        if sid is None:
            self.fail(
                f"{text!r}: expected a stream id (1700000000000-0), 0, or an ISO time "
                "(2026-01-01T10:00:00Z)",
                param,
                ctx,
            )
        return sid


def _parse_stream_id(text: str, *, end: bool) -> StreamId | None:
    if text == "0":
        return (0, 0)
    if match := re.fullmatch(r"(\d+)-(\d+)", text):
        ms, seq = int(match[1]), int(match[2])
        return (ms, seq) if seq <= MAX_SEQ else None
    if text.isdigit():
        return (int(text), MAX_SEQ if end else 0)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return (int(when.timestamp() * 1000), MAX_SEQ if end else 0)


@contextmanager
def progress(description: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr, shown only when stderr is a terminal (output stays clean in
    pipes and logs); yields ``advance(n)``. Without ``total`` it counts and pulses."""
    console = Console(stderr=True)
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)
