"""The card seed on an agent's first sight carries the org layers the api manages (migration
0005): a new agent seen while the org template and org conscience values are enabled gets them
from the start, with the version the api would write (so the api's later writes compare right)."""

from __future__ import annotations

import msgspec
from psycopg.types.json import Jsonb
from smoltbot_bus import Delivery
from smoltbot_contracts import CardRecord
from smoltbot_contracts.streams import card_key
from smoltbot_persister.handlers import Persister

from services.persister.tests.persister_factories import agent_event

TEMPLATE = {"autonomy_envelope": {"forbidden_actions": ["wire_transfer"]}}


async def test_first_sight_seed_carries_the_enabled_org_layers(pool, redis, prefix):
    async with pool.connection() as conn, conn.transaction():
        await conn.execute("TRUNCATE org_card_template, org_conscience_values")
        await conn.execute(
            "INSERT INTO org_card_template (enabled, template, version) VALUES (true, %s, 3)",
            [Jsonb(TEMPLATE)],
        )
        await conn.execute(
            'INSERT INTO org_conscience_values (enabled, mode, "values", version)'
            " VALUES (true, 'replace', %s, 2)",
            [Jsonb([{"type": "BOUNDARY", "content": "No payments", "id": "org-1"}])],
        )
    try:
        event = agent_event()
        await Persister(pool, redis, prefix).handle(
            [Delivery(stream="agents", entry_id="1-1", event=event)]
        )
        raw = await redis.get(card_key(prefix, event.agent_id))
        record = msgspec.msgpack.decode(raw, type=CardRecord)
        assert record.org_template == TEMPLATE
        assert record.conscience_mode == "replace"
        assert [v.id for v in record.org_conscience_values or []] == ["org-1"]
        assert record.version == 5  # default card 0 + template 3 + org values 2
    finally:
        async with pool.connection() as conn:
            await conn.execute("TRUNCATE org_card_template, org_conscience_values")
