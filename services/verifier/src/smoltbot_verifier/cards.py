"""Card lookup: ``card:{agent}`` holds a msgpack ``CardRecord`` the api writes (architecture §4).

A missing or unreadable key means "use the default card" (protocols.md §1.2) and is counted in
``smoltbot_verifier_default_card_total``: verification must go on, and operators see how often it
happens.

A stored record is resolved with ``smoltbot_analysis.cards.resolve_record``: the org template is
merged into the agent card (protocols.md §1.3) and the conscience values are layered (§4.2) at
every resolution, so the AAP verification and the AIP analysis both see the merged card. The
default card gets no org layers: an agent without a stored record has no org known here, and
``conscience_values`` None means the AIP defaults.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
from redis.asyncio import Redis
from smoltbot_analysis.cards import resolve_record
from smoltbot_contracts import CardRecord, ConscienceValue
from smoltbot_contracts.cards import default_card
from smoltbot_contracts.streams import card_key

from smoltbot_verifier.metrics import DEFAULT_CARDS

log = logging.getLogger(__name__)
_DECODER = msgspec.msgpack.Decoder(CardRecord)


@dataclass(frozen=True, slots=True)
class ResolvedCard:
    """The card a trace is checked against. ``conscience_values`` None = AIP defaults."""

    card_id: str
    card: Mapping[str, Any]
    conscience_values: tuple[ConscienceValue, ...] | None
    is_default: bool = False


def decode_record(raw: bytes | None) -> tuple[CardRecord | None, str]:
    """Decode a ``card:{agent}`` value: ``(record, "")`` or ``(None, "missing" | "invalid")``."""
    if raw is None:
        return None, "missing"
    try:
        record = _DECODER.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        log.warning("unreadable card record; using the default card", extra={"error": str(exc)})
        return None, "invalid"
    return record, ""


def resolve(agent: str, record: CardRecord | None, reason: str, at: datetime) -> ResolvedCard:
    """The stored card with its org layers merged, or the default card (issued at ``at`` so the
    result is reproducible)."""
    if record is not None:
        effective = resolve_record(record)
        return ResolvedCard(
            card_id=effective.card_id,
            card=effective.card,
            conscience_values=effective.conscience_values,
        )
    DEFAULT_CARDS.labels(reason or "missing").inc()
    card = default_card(agent, at)
    return ResolvedCard(
        card_id=str(card["card_id"]), card=card, conscience_values=None, is_default=True
    )


class CardStore:
    """Reads cards for a batch of agents in one pipelined round trip (no cross-batch cache)."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix

    async def fetch(self, agents: Iterable[str]) -> dict[str, tuple[CardRecord | None, str]]:
        """``{agent: (record or None, reason)}``; Redis errors propagate (the batch is retried)."""
        names = sorted(set(agents))
        if not names:
            return {}
        pipe = self._redis.pipeline(transaction=False)
        for agent in names:
            pipe.get(card_key(self._prefix, agent))
        raws: list[Any] = await pipe.execute()
        return {
            agent: decode_record(raw if isinstance(raw, bytes) else None)
            for agent, raw in zip(names, raws, strict=True)
        }
