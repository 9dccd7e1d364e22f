"""The api's writes of ``card:{agent}`` (architecture §4): a msgpack ``CardRecord`` whose
``version`` only moves forward.

The api commits to PostgreSQL first, builds the record from what it committed, then writes it
through one Lua script that compares versions: a record is written only when the stored one is
missing, unreadable or older. A slow request carrying an older state can therefore never
overwrite a newer one, whichever of two writers reaches Redis first. The script reads the stored
version with ``cmsgpack`` (msgpack maps decode to Lua tables), like the cfg writer does.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, Literal

import msgspec
from redis.asyncio import Redis
from smoltbot_contracts import CardRecord
from smoltbot_contracts.streams import card_key

__all__ = ["PUT_CARD_LUA", "CardCache", "PutOutcome"]

log = logging.getLogger(__name__)

PutOutcome = Literal["written", "same", "stale"]
"""``written``: the record is stored; ``same``: that version was already stored (nothing
changed); ``stale``: a newer version is stored (nothing changed)."""

# KEYS: card:{a}   ARGV: record msgpack, its version
# Returns {code, stored version}: 1 written, 0 same version stored, -1 newer version stored.
PUT_CARD_LUA = """
local raw = redis.call('GET', KEYS[1])
local new = tonumber(ARGV[2])
if raw then
  local ok, rec = pcall(cmsgpack.unpack, raw)
  if ok and type(rec) == 'table' and tonumber(rec['version']) then
    local current = tonumber(rec['version'])
    if current == new then return {0, current} end
    if current > new then return {-1, current} end
  end
end
redis.call('SET', KEYS[1], ARGV[1])
return {1, new}
"""

_CODES: dict[int, PutOutcome] = {1: "written", 0: "same", -1: "stale"}
_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(CardRecord)


class CardCache:
    """Reads and version-guarded writes of ``card:{agent}``."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix
        self._script = redis.register_script(PUT_CARD_LUA)

    def key(self, agent: str) -> str:
        return card_key(self._prefix, agent)

    async def read(self, agent: str) -> CardRecord | None:
        """The stored record; None when missing or unreadable."""
        raw = await self._redis.get(self.key(agent))
        if not isinstance(raw, bytes):
            return None
        try:
            return _DECODER.decode(raw)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return None

    async def put(self, agent: str, record: CardRecord) -> PutOutcome:
        """Write ``record`` unless the stored version is the same or newer."""
        result: Any = await self._script(
            keys=[self.key(agent)], args=[_ENCODER.encode(record), record.version]
        )
        outcome = _CODES[int(result[0])]
        if outcome == "stale":
            log.info(
                "card:{agent} kept a newer version",
                extra={"agent_id": agent, "version": record.version, "stored": int(result[1])},
            )
        return outcome

    async def put_many(self, records: Iterable[tuple[str, CardRecord]]) -> dict[str, PutOutcome]:
        """:meth:`put` for a batch of agents in one pipelined round trip."""
        batch = list(records)
        if not batch:
            return {}
        async with self._redis.pipeline(transaction=False) as pipe:
            for agent, record in batch:
                await self._script(
                    keys=[self.key(agent)],
                    args=[_ENCODER.encode(record), record.version],
                    client=pipe,
                )
            results = await pipe.execute()
        return {
            agent: _CODES[int(result[0])] for (agent, _), result in zip(batch, results, strict=True)
        }
