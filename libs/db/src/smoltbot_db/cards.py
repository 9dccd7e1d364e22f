"""The ``card:{agent}`` record as PostgreSQL has it (architecture §4; migration 0005).

One function for both writers of ``card:{agent}``: the api (write-through after each change) and
the persister (the seed on an agent's first sight, ``SET NX``), so a new agent seen while the org
card template or org conscience values are enabled gets them from the start.

One statement reads each agent's active card (the default card when none is stored), its own
layers (``agent_card_settings``) and the org rows, so a record is one snapshot of committed rows.
``CardRecord.version`` is the sum of four versions that only grow (the card's, the agent
layers', the template's, the org values'): a record built later never has a smaller version, and
an equal version is the same state — what the api's compare-and-set write relies on.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import msgspec
from psycopg import AsyncConnection
from psycopg.rows import dict_row
from smoltbot_contracts import CardRecord, ConscienceValue, ids
from smoltbot_contracts.cards import default_card

__all__ = ["RECORDS_SQL", "card_record", "card_records"]

RECORDS_SQL = """
SELECT a.id AS agent_id, a.first_seen_at,
       c.id AS card_id, c.card_json, c.version AS card_version, c.issued_at,
       CASE WHEN s.agent_id IS NULL THEN c.conscience_values ELSE s.conscience_values END
           AS conscience_values,
       COALESCE(s.org_card_exempt, false) AS exempt,
       COALESCE(s.version, 0) AS settings_version,
       COALESCE(t.enabled, false) AS template_enabled, t.template,
       COALESCE(t.version, 0) AS template_version,
       COALESCE(v.enabled, false) AS values_enabled, COALESCE(v.mode, 'augment') AS mode,
       v."values" AS org_values, COALESCE(v.version, 0) AS values_version
FROM agents a
LEFT JOIN alignment_cards c ON c.agent_id = a.id AND c.is_active
LEFT JOIN agent_card_settings s ON s.agent_id = a.id
LEFT JOIN org_card_template t ON true
LEFT JOIN org_conscience_values v ON true
"""
"""Rows :func:`card_record` reads; append ``WHERE`` / ``ORDER BY`` over ``a.id``."""


def _values(raw: Any) -> list[ConscienceValue] | None:
    return None if raw is None else msgspec.convert(raw, list[ConscienceValue])


def card_record(row: dict[str, Any]) -> CardRecord:
    """The record one row of :data:`RECORDS_SQL` stands for.

    The org template is a layer only while it is enabled, set, and the agent is not exempt; the
    org values only while they are enabled. An agent's own values are those of
    ``agent_card_settings`` once it has a row there (NULL: reset), else the active card's.
    """
    agent = row["agent_id"]
    stored = row["card_id"] is not None
    template = row["template"]
    return CardRecord(
        card_id=row["card_id"] if stored else ids.card_id(agent),
        card=row["card_json"] if stored else default_card(agent, row["first_seen_at"]),
        conscience_values=_values(row["conscience_values"]),
        version=(row["card_version"] or 0)
        + row["settings_version"]
        + row["template_version"]
        + row["values_version"],
        org_template=(
            template
            if row["template_enabled"] and not row["exempt"] and template is not None
            else None
        ),
        org_conscience_values=_values(row["org_values"]) if row["values_enabled"] else None,
        conscience_mode=row["mode"],
    )


async def _rows(
    conn: AsyncConnection[Any], query: str, params: Sequence[object]
) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)
        return await cur.fetchall()


async def card_records(conn: AsyncConnection[Any], agents: Iterable[str]) -> dict[str, CardRecord]:
    """The record of each known agent of ``agents`` (unknown ones are left out)."""
    wanted = sorted(set(agents))
    if not wanted:
        return {}
    rows = await _rows(conn, RECORDS_SQL + " WHERE a.id = ANY(%s)", [wanted])
    return {row["agent_id"]: card_record(row) for row in rows}
