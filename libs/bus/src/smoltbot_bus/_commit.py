"""Commit (architecture §3.2): a handled batch's outputs are XADDed and its inputs XACKed in one
MULTI, so "published downstream" and "acked upstream" happen together or not at all."""

from __future__ import annotations

from collections.abc import Sequence

from smoltbot_contracts.codec import to_fields

from smoltbot_bus._crypto import EventCipher
from smoltbot_bus._entries import Member, ids_by_stream
from smoltbot_bus._metrics import ENTRIES
from smoltbot_bus._types import Delivery, Output


class Committer:
    """Publishes-and-acks for one consumer; outputs are sealed like any publish."""

    def __init__(self, member: Member, cipher: EventCipher) -> None:
        self._member = member
        self._cipher = cipher

    async def commit(self, outputs: Sequence[Output], deliveries: Sequence[Delivery]) -> None:
        m = self._member
        pipe = m.redis.pipeline(transaction=True)
        for out in outputs:
            fields = self._cipher.seal(out.stream, to_fields(out.event))
            key = m.key(out.stream)
            pipe.xadd(key, fields, maxlen=out.maxlen, approximate=True)  # type: ignore[arg-type]
            if out.ttl_s is not None:
                pipe.expire(key, out.ttl_s)
        acked = ids_by_stream(deliveries)
        for stream, ids in acked.items():
            pipe.xack(m.key(stream), m.group, *ids)
        await pipe.execute()
        for stream, ids in acked.items():
            ENTRIES.labels(stream, "acked").inc(len(ids))
