"""Dead letters as the bus writes them, for the tests of the bus and of the tools that read them."""

from __future__ import annotations

import os
from collections.abc import Mapping

from smoltbot_bus import DeadLetter, EventCipher
from smoltbot_contracts import Event
from smoltbot_contracts.codec import to_fields

__all__ = ["observer_dead_letter", "sealed_fields"]


def sealed_fields(event: Event, stream: str = "exchanges") -> dict[bytes, bytes]:
    """The wire fields of ``event`` on ``stream``, its body sealed under a fresh random key that
    nothing else holds."""
    return EventCipher(os.urandom(32)).seal(stream, to_fields(event))


def observer_dead_letter(
    fields: Mapping[bytes, bytes], *, reason: str, deliveries: int, source_id: str = "1-0"
) -> DeadLetter:
    """The dead letter consumer ``observer-1`` of group ``observer`` writes, now, for the entry
    ``source_id`` of ``exchanges`` that carried ``fields``."""
    return DeadLetter.of(
        fields,
        reason=reason,
        deliveries=deliveries,
        source_stream="exchanges",
        source_id=source_id,
        group="observer",
        consumer="observer-1",
    )
