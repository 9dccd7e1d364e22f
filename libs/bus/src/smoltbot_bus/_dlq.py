"""Dead letters (architecture §3.2): the one format of a ``dlq:<stream>`` entry, the one writer
and their expiry.

A dead letter is the failed entry's own wire fields (``t``, ``id``, ``b``, and ``k`` when the body
is sealed, so a body stream's dead letter stays encrypted at rest) followed by why, how often,
where from, by whom and when. ``smoltbot dlq`` reads them through :class:`DeadLetter` too, so
writer and reader cannot drift apart.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec
from redis.asyncio import Redis
from smoltbot_contracts.codec import to_fields
from smoltbot_contracts.streams import dlq_key
from smoltbot_logging import bind_event

from smoltbot_bus._crypto import EventCipher
from smoltbot_bus._entries import Entry, Member
from smoltbot_bus._metrics import ENTRIES
from smoltbot_bus._types import Delivery

log = logging.getLogger(__name__)


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True):
    """One ``dlq:<stream>`` entry. Every field is optional when reading, so dead letters written
    by older versions (or by hand) still read."""

    t: bytes | None = None
    id: bytes | None = None
    b: bytes | None = None
    k: bytes | None = None
    reason: str = ""
    deliveries: int = 0
    source_stream: str = ""
    source_id: str = ""
    group: str = ""
    consumer: str = ""
    failed_at: str = ""
    """ISO-8601 time (UTC) the entry was dead-lettered."""
    extra: dict[bytes, bytes] = {}
    """Any other fields the failed entry carried (e.g. a foreign writer's), kept verbatim."""

    @classmethod
    def of(
        cls,
        fields: Mapping[bytes, bytes],
        *,
        reason: str,
        deliveries: int,
        source_stream: str,
        source_id: str,
        group: str,
        consumer: str,
    ) -> DeadLetter:
        """The dead letter of an entry with ``fields``, failed now."""
        return msgspec.structs.replace(
            cls.from_fields(fields),
            reason=reason,
            deliveries=deliveries,
            source_stream=source_stream,
            source_id=source_id,
            group=group,
            consumer=consumer,
            failed_at=datetime.now(UTC).isoformat(),
        )

    @classmethod
    def from_fields(cls, fields: Mapping[bytes, bytes]) -> DeadLetter:
        values: dict[str, Any] = {}
        extra: dict[bytes, bytes] = {}
        for key, value in fields.items():
            name = key.decode(errors="replace")
            if name in _WIRE:
                values[name] = value
            elif name == "deliveries":
                values[name] = int(value) if value.isdigit() else 0
            elif name in _ABOUT:
                values[name] = value.decode(errors="replace")
            else:
                extra[key] = value
        return cls(**values, extra=extra)

    def to_fields(self) -> dict[bytes, bytes]:
        """The stream entry: the wire fields first, then the failure's description."""
        fields = {**self.event_fields(), **self.extra}
        for name in _ABOUT:
            fields[name.encode()] = str(getattr(self, name)).encode()
        return fields

    def event_fields(self) -> dict[bytes, bytes]:
        """The failed entry's wire fields: what a re-drive puts back on the stream."""
        return {
            name.encode(): value for name in _WIRE if (value := getattr(self, name)) is not None
        }

    @property
    def event_type(self) -> str:
        return (self.t or b"").decode(errors="replace")

    @property
    def event_id(self) -> str:
        return (self.id or b"").decode(errors="replace")

    @property
    def encrypted(self) -> bool:
        return self.k is not None


_WIRE = ("t", "id", "b", "k")
_ABOUT = tuple(f for f in DeadLetter.__struct_fields__ if f not in {*_WIRE, "extra"})


class DeadLetters:
    """Writes one consumer's dead letters: XADD to ``dlq:<stream>`` and XACK the source entry
    in one MULTI, so a crash can duplicate a dead letter but never lose the entry."""

    def __init__(self, member: Member, cipher: EventCipher) -> None:
        self._member = member
        self._cipher = cipher

    async def entry(self, entry: Entry, reason: str) -> None:
        """Dead-letter an entry as read (e.g. undecodable: its bytes are the evidence)."""
        await self.write(
            DeadLetter.of(
                entry.fields,
                reason=reason,
                deliveries=entry.deliveries,
                source_stream=entry.stream,
                source_id=entry.entry_id,
                group=self._member.group,
                consumer=self._member.name,
            )
        )

    async def delivery(self, delivery: Delivery, reason: str) -> None:
        """Dead-letter a decoded entry, re-sealed like its source (body streams stay sealed)."""
        fields = self._cipher.seal(delivery.stream, to_fields(delivery.event))
        entry = Entry(delivery.stream, delivery.entry_id, fields, delivery.deliveries)
        await self.entry(entry, reason)

    async def write(self, letter: DeadLetter) -> None:
        m = self._member
        pipe = m.redis.pipeline(transaction=True)
        pipe.xadd(dlq_key(m.prefix, letter.source_stream), letter.to_fields())  # type: ignore[arg-type]
        pipe.xack(m.key(letter.source_stream), letter.group, letter.source_id)
        await pipe.execute()
        ENTRIES.labels(letter.source_stream, "dead_lettered").inc()
        with bind_event(letter.event_id or None):
            log.error(
                "entry dead-lettered",
                extra={
                    "stream": letter.source_stream,
                    "entry_id": letter.source_id,
                    "event_type": letter.event_type,
                    "reason": letter.reason,
                    "deliveries": letter.deliveries,
                },
            )


async def expire_dead_letters(redis: Redis, prefix: str, stream: str, retention_s: int) -> None:
    """Drop ``stream``'s dead letters older than ``retention_s`` (approximate: whole nodes)."""
    cutoff_ms = int(time.time() * 1000) - retention_s * 1000
    await redis.xtrim(dlq_key(prefix, stream), minid=f"{cutoff_ms}-0", approximate=True)
