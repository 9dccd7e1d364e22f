"""The vocabulary the consumer's parts share: who is consuming (:class:`Member`), one raw stream
entry, and the id grouping they all need (heartbeats re-claim, commits ack per stream)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple, Protocol

from redis.asyncio import Redis
from smoltbot_contracts.streams import stream_key

from smoltbot_bus._types import ConsumerConfig


class Member(NamedTuple):
    """One consumer as a member of its group: what each of its parts needs to address Redis."""

    redis: Redis
    prefix: str
    config: ConsumerConfig
    name: str
    """The consumer name (unique in the group; stable across restarts of the same pod)."""

    @property
    def group(self) -> str:
        return self.config.group

    def key(self, stream: str) -> str:
        """The Redis key of a logical stream."""
        return stream_key(self.prefix, stream)


class Entry(NamedTuple):
    """One stream entry as read from Redis, before decoding."""

    stream: str
    """Logical stream name (without the prefix)."""
    entry_id: str
    fields: dict[bytes, bytes]
    """The entry's fields; empty for an entry Redis no longer holds (trimmed while pending)."""
    deliveries: int = 1
    """How many times Redis has delivered it (1 for a fresh read)."""


class _Located(Protocol):
    @property
    def stream(self) -> str: ...
    @property
    def entry_id(self) -> str: ...


def text(value: object) -> str:
    """A Redis reply value as text (replies are bytes: the bus client never decodes)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def ids_by_stream(entries: Iterable[_Located]) -> dict[str, list[str]]:
    """Entry ids per logical stream, in order (XACK and XCLAIM take one stream at a time)."""
    out: dict[str, list[str]] = {}
    for entry in entries:
        out.setdefault(entry.stream, []).append(entry.entry_id)
    return out
