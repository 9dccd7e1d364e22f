"""The agent's alignment card, read from ``card:{agent}`` with a short in-process cache.

The observer only needs the card for its id, declared values and escalation triggers; a card
changed by the api is picked up within ``ttl_s``. A missing or unreadable key means the
default card (protocols.md §1.2), as the verifier does.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

import msgspec
from smoltbot_analysis.cards import resolve_record
from smoltbot_contracts import CardRecord
from smoltbot_contracts.cards import default_card
from smoltbot_contracts.ids import card_id as default_card_id

from smoltbot_observer import metrics

log = logging.getLogger(__name__)

JSONObject = dict[str, Any]
_DECODER = msgspec.msgpack.Decoder(CardRecord)


class CardSource(Protocol):
    """Raw access to ``card:{agent}``: the msgpack bytes, or None when the key is missing."""

    async def fetch(self, agent_id: str) -> bytes | None: ...


class ResolvedCard(msgspec.Struct, frozen=True, kw_only=True):
    card_id: str
    card: JSONObject
    is_default: bool


def decode_card(raw: bytes | None, agent_id: str) -> CardRecord | None:
    """Decode a stored card; a corrupt value is logged and treated as missing (never a crash)."""
    if raw is None:
        return None
    try:
        return _DECODER.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        log.warning(
            "unreadable card in redis; using the default card",
            extra={"agent_id": agent_id, "error": str(exc)[:200]},
        )
        return None


class CardCache:
    """Caches each agent's stored card (or its absence) for ``ttl_s`` seconds, LRU-bounded."""

    def __init__(
        self,
        source: CardSource,
        *,
        ttl_s: float = 5.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = source
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, CardRecord | None]] = OrderedDict()

    async def record(self, agent_id: str) -> CardRecord | None:
        """The stored card of ``agent_id`` (None when it has none). Redis errors propagate."""
        now = self._clock()
        hit = self._entries.get(agent_id)
        if hit is not None and now - hit[0] < self._ttl_s:
            self._entries.move_to_end(agent_id)
            return hit[1]
        record = decode_card(await self._source.fetch(agent_id), agent_id)
        self._entries[agent_id] = (now, record)
        self._entries.move_to_end(agent_id)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
        return record

    async def resolve(self, agent_id: str, issued_at: datetime) -> ResolvedCard:
        """The card to apply: the stored one, else the default card issued at ``issued_at``."""
        record = await self.record(agent_id)
        if record is not None:
            # The org template's rules apply to the decision analysis too (protocols.md §1.3).
            merged = resolve_record(record)
            return ResolvedCard(card_id=merged.card_id, card=merged.card, is_default=False)
        metrics.DEFAULT_CARDS.inc()
        return ResolvedCard(
            card_id=default_card_id(agent_id),
            card=default_card(agent_id, issued_at),
            is_default=True,
        )
