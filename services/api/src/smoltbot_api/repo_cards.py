"""Cards, the org card template and conscience values: PostgreSQL first, then ``card:{agent}``.

Every change is one PostgreSQL transaction that moves one monotonic version forward
(``alignment_cards.version`` per agent, ``agent_card_settings.version``,
``org_card_template.version``, ``org_conscience_values.version``). After the commit the record is
rebuilt by one statement (``smoltbot_db.cards``, shared with the persister's seed: one snapshot
of committed rows, so two records are always ordered) and written through :class:`CardCache`.
Its ``version`` is the sum of the four versions: each only grows, so a record built later never
has a smaller version, and an equal version means the same state. A slow writer's older record
is therefore refused by the cache's compare (``stale``).

An org-level change rewrites every agent's key, in batches of :data:`REWRITE_BATCH` agents (one
statement and one pipelined round trip each), logged and counted. A Redis failure after the
commit does not undo it: the answer says ``cache: failed`` and the agent's next card read (or any
later write) repairs the key, since the read compares the stored version with PostgreSQL's.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
import psycopg
from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from redis.asyncio import Redis
from redis.exceptions import RedisError
from smoltbot_analysis.cards import default_conscience_values, resolve_record
from smoltbot_contracts import CardRecord, ConscienceValue
from smoltbot_db.cards import RECORDS_SQL, card_record

from smoltbot_api.card_cache import CardCache, PutOutcome
from smoltbot_api.db import Database
from smoltbot_api.errors import ConflictError, NotFoundError
from smoltbot_api.metrics import CARD_WRITES
from smoltbot_api.schemas_cards import (
    AgentConscienceValues,
    CacheOutcome,
    CardHistory,
    CardLayers,
    CardPublished,
    CardVersion,
    CardView,
    ConscienceMode,
    ConscienceValuesReset,
    OrgCardExempt,
    OrgCardTemplate,
    OrgConscienceValues,
)

__all__ = ["REWRITE_BATCH", "CardStore", "card_redis_client"]

log = logging.getLogger(__name__)

REWRITE_BATCH = 500

_ENC = msgspec.json.Encoder()


def card_redis_client(url: str) -> Redis:
    """Short timeouts: a request must not hang on a Redis that is gone."""
    return Redis.from_url(
        url, decode_responses=False, socket_timeout=2.0, socket_connect_timeout=1.0
    )


def _values(raw: Any) -> list[ConscienceValue] | None:
    return None if raw is None else msgspec.convert(raw, list[ConscienceValue])


def _jsonb(value: Any) -> Jsonb:
    return Jsonb(value, dumps=lambda v: _ENC.encode(v).decode())


@dataclass(frozen=True, slots=True)
class _Resolved:
    """One agent's record as PostgreSQL has it, with what the card view shows besides."""

    record: CardRecord
    card_version: int
    issued_at: datetime | None
    is_default: bool
    template_enabled: bool
    exempt: bool


def _resolved(row: dict[str, Any]) -> _Resolved:
    return _Resolved(
        record=card_record(row),
        card_version=row["card_version"] or 0,
        issued_at=row["issued_at"],
        is_default=not row["card_version"],  # no card row yet, or the default card (0)
        template_enabled=row["template_enabled"],
        exempt=row["exempt"],
    )


async def _rows(
    conn: AsyncConnection, query: str, params: Sequence[object]
) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)
        return await cur.fetchall()


def _effective(record: CardRecord) -> list[ConscienceValue]:
    values = resolve_record(record).conscience_values
    return list(values if values is not None else default_conscience_values())


class CardStore:
    """The card endpoints' reads and write-throughs (see the module docstring)."""

    def __init__(self, db: Database, redis: Redis, prefix: str) -> None:
        self._db = db
        self._redis = redis
        self._cache = CardCache(redis, prefix)

    @property
    def cache(self) -> CardCache:
        return self._cache

    async def close(self) -> None:
        await self._redis.aclose()

    # -- record building and the write-through -------------------------------------------------

    async def _resolve(self, agent_id: str) -> _Resolved:
        async with self._db.connection() as conn:
            rows = await _rows(conn, RECORDS_SQL + " WHERE a.id = %s", [agent_id])
        if not rows:
            raise NotFoundError(f"agent {agent_id!r} not found")
        return _resolved(rows[0])

    async def _put(self, agent_id: str, record: CardRecord) -> CacheOutcome:
        try:
            outcome: CacheOutcome = await self._cache.put(agent_id, record)
        except (RedisError, OSError) as exc:
            log.warning(
                "card:{agent} write failed after the commit; the next read repairs it",
                extra={"agent_id": agent_id, "error": f"{type(exc).__name__}: {exc}"[:300]},
            )
            outcome = "failed"
        CARD_WRITES.labels(outcome).inc()
        return outcome

    async def _write_through(self, agent_id: str) -> tuple[_Resolved, CacheOutcome]:
        resolved = await self._resolve(agent_id)
        return resolved, await self._put(agent_id, resolved.record)

    async def rewrite_all(self, reason: str) -> int:
        """Rewrite every agent's ``card:{agent}`` after an org-level change, in batches.

        Returns how many keys were written (``same``/``stale`` ones are left as they are)."""
        counts: dict[str, int] = {"written": 0, "same": 0, "stale": 0, "failed": 0}
        after = ""
        outcomes: dict[str, PutOutcome]
        while True:
            async with self._db.connection() as conn:
                rows = await _rows(
                    conn,
                    RECORDS_SQL + " WHERE a.id > %s ORDER BY a.id LIMIT %s",
                    [after, REWRITE_BATCH],
                )
            if not rows:
                break
            after = rows[-1]["agent_id"]
            batch = [(row["agent_id"], _resolved(row).record) for row in rows]
            failed = 0
            try:
                outcomes = await self._cache.put_many(batch)
            except (RedisError, OSError) as exc:
                log.warning(
                    "card:{agent} rewrite failed for a batch; the next read repairs each",
                    extra={"agents": len(batch), "error": f"{type(exc).__name__}: {exc}"[:300]},
                )
                outcomes = {}
                failed = len(batch)
            for outcome in outcomes.values():
                counts[outcome] += 1
                CARD_WRITES.labels(outcome).inc()
            if failed:
                counts["failed"] += failed
                CARD_WRITES.labels("failed").inc(failed)
        log.info("org change rewrote card:{agent} keys", extra={"reason": reason, **counts})
        return counts["written"]

    # -- agent cards ---------------------------------------------------------------------------

    async def get_card(self, agent_id: str) -> CardView:
        """The active card; a missing or older ``card:{agent}`` is repaired on the way."""
        resolved = await self._resolve(agent_id)
        record = resolved.record
        repaired: CacheOutcome | None = None
        try:
            stored = await self._cache.read(agent_id)
        except (RedisError, OSError):
            stored = record  # Redis down: serve PostgreSQL's view, repair later
        if stored is None or stored.version < record.version:
            repaired = await self._put(agent_id, record)
        effective = resolve_record(record)
        return CardView(
            agent_id=agent_id,
            card_id=record.card_id,
            version=resolved.card_version,
            record_version=record.version,
            is_default=resolved.is_default,
            issued_at=resolved.issued_at,
            card=record.card,
            merged=effective.card,
            effective_conscience_values=_effective(record),
            layers=CardLayers(
                org_template=record.org_template,
                org_template_enabled=resolved.template_enabled,
                org_card_exempt=resolved.exempt,
                conscience_values=record.conscience_values,
                org_conscience_values=record.org_conscience_values,
                conscience_mode=record.conscience_mode,
            ),
            cache=repaired,
        )

    async def publish(
        self,
        agent_id: str,
        card: dict[str, Any],
        issued_at: datetime,
        conscience_values: list[ConscienceValue] | None,
    ) -> CardPublished:
        """A new active version (max + 1); the previous one stays in the history."""
        card_id = str(card["card_id"])
        async with self._db.connection() as conn, conn.transaction():
            if not await _rows(conn, "SELECT 1 FROM agents WHERE id = %s FOR UPDATE", [agent_id]):
                raise NotFoundError(f"agent {agent_id!r} not found")
            taken = await _rows(
                conn, "SELECT agent_id, version FROM alignment_cards WHERE id = %s", [card_id]
            )
            if taken:
                owner, version = taken[0]["agent_id"], taken[0]["version"]
                where = f"version {version} of {owner}" if owner == agent_id else "another agent's"
                raise ConflictError(
                    f"card_id {card_id!r} is already {where} card; every published version "
                    "needs a card_id of its own (e.g. add a version suffix)"
                )
            rows = await _rows(
                conn,
                "SELECT COALESCE(max(version), 0) + 1 AS next FROM alignment_cards"
                " WHERE agent_id = %s",
                [agent_id],
            )
            version = int(rows[0]["next"])
            await conn.execute(
                "UPDATE alignment_cards SET is_active = false WHERE agent_id = %s AND is_active",
                [agent_id],
            )
            values_json = (
                None
                if conscience_values is None
                else _jsonb(msgspec.to_builtins(conscience_values))
            )
            try:
                await conn.execute(
                    "INSERT INTO alignment_cards (id, agent_id, card_json, conscience_values,"
                    " is_active, issued_at, version) VALUES (%s, %s, %s, %s, true, %s, %s)",
                    [card_id, agent_id, _jsonb(card), values_json, issued_at, version],
                )
            except psycopg.errors.UniqueViolation as exc:
                # Another agent's publish took this card_id meanwhile, or the persister's default
                # card arrived between the two statements: nothing was stored, say so.
                what = (
                    f"card_id {card_id!r} was just published by another request"
                    if exc.diag.constraint_name == "alignment_cards_pkey"
                    else "the agent's card changed meanwhile"
                )
                raise ConflictError(f"{what}; nothing was stored, retry") from None
            if conscience_values is not None:
                await self._set_agent_values(conn, agent_id, values_json)
        resolved, outcome = await self._write_through(agent_id)
        log.info(
            "card published",
            extra={"agent_id": agent_id, "card_id": card_id, "version": version, "cache": outcome},
        )
        return CardPublished(
            agent_id=agent_id,
            card_id=card_id,
            version=version,
            record_version=resolved.record.version,
            cache=outcome,
        )

    async def history(self, agent_id: str, limit: int, offset: int) -> CardHistory:
        async with self._db.connection() as conn, conn.transaction():
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            if not await _rows(conn, "SELECT 1 FROM agents WHERE id = %s", [agent_id]):
                raise NotFoundError(f"agent {agent_id!r} not found")
            rows = await _rows(
                conn,
                "SELECT id AS card_id, version, is_active, issued_at, created_at,"
                " conscience_values, card_json AS card FROM alignment_cards WHERE agent_id = %s"
                " ORDER BY version DESC LIMIT %s OFFSET %s",
                [agent_id, limit, offset],
            )
            total = await _rows(
                conn, "SELECT count(*) AS n FROM alignment_cards WHERE agent_id = %s", [agent_id]
            )
        return CardHistory(
            agent_id=agent_id,
            cards=msgspec.convert(rows, list[CardVersion]),
            total=int(total[0]["n"]),
            limit=limit,
            offset=offset,
        )

    # -- per-agent layers ----------------------------------------------------------------------

    async def _set_agent_values(
        self, conn: AsyncConnection, agent_id: str, values_json: Jsonb | None
    ) -> None:
        await conn.execute(
            "INSERT INTO agent_card_settings AS s (agent_id, conscience_values, version)"
            " VALUES (%s, %s, 1) ON CONFLICT (agent_id) DO UPDATE SET"
            " conscience_values = EXCLUDED.conscience_values, version = s.version + 1,"
            " updated_at = now()",
            [agent_id, values_json],
        )

    async def _agent_change(self, agent_id: str, query: str, params: Sequence[object]) -> None:
        async with self._db.connection() as conn, conn.transaction():
            if not await _rows(conn, "SELECT 1 FROM agents WHERE id = %s FOR UPDATE", [agent_id]):
                raise NotFoundError(f"agent {agent_id!r} not found")
            await conn.execute(query, params)

    async def get_agent_values(self, agent_id: str) -> AgentConscienceValues:
        resolved = await self._resolve(agent_id)
        own = resolved.record.conscience_values
        return AgentConscienceValues(
            agent_id=agent_id,
            conscience_values=list(own or ()),
            is_default=not own,
            effective_conscience_values=_effective(resolved.record),
        )

    async def put_agent_values(
        self, agent_id: str, values: list[ConscienceValue]
    ) -> AgentConscienceValues:
        values_json = _jsonb(msgspec.to_builtins(values))
        async with self._db.connection() as conn, conn.transaction():
            if not await _rows(conn, "SELECT 1 FROM agents WHERE id = %s FOR UPDATE", [agent_id]):
                raise NotFoundError(f"agent {agent_id!r} not found")
            await self._set_agent_values(conn, agent_id, values_json)
        resolved, outcome = await self._write_through(agent_id)
        own = resolved.record.conscience_values
        return AgentConscienceValues(
            agent_id=agent_id,
            conscience_values=list(own or ()),
            is_default=not own,
            effective_conscience_values=_effective(resolved.record),
            cache=outcome,
        )

    async def reset_agent_values(self, agent_id: str) -> ConscienceValuesReset:
        async with self._db.connection() as conn, conn.transaction():
            if not await _rows(conn, "SELECT 1 FROM agents WHERE id = %s FOR UPDATE", [agent_id]):
                raise NotFoundError(f"agent {agent_id!r} not found")
            await self._set_agent_values(conn, agent_id, None)
        _, outcome = await self._write_through(agent_id)
        return ConscienceValuesReset(agent_id=agent_id, reset_to_defaults=True, cache=outcome)

    async def set_exempt(self, agent_id: str, exempt: bool) -> OrgCardExempt:
        await self._agent_change(
            agent_id,
            "INSERT INTO agent_card_settings AS s (agent_id, org_card_exempt, version)"
            " VALUES (%s, %s, 1) ON CONFLICT (agent_id) DO UPDATE SET"
            " org_card_exempt = EXCLUDED.org_card_exempt, version = s.version + 1,"
            " updated_at = now()",
            [agent_id, exempt],
        )
        _, outcome = await self._write_through(agent_id)
        return OrgCardExempt(agent_id=agent_id, org_card_exempt=exempt, cache=outcome)

    # -- org layers ----------------------------------------------------------------------------

    async def get_template(self, agents_rewritten: int | None = None) -> OrgCardTemplate:
        async with self._db.connection() as conn:
            rows = await _rows(
                conn, "SELECT enabled, template, version, updated_at FROM org_card_template", []
            )
            exempt = await _rows(
                conn,
                "SELECT agent_id FROM agent_card_settings WHERE org_card_exempt ORDER BY agent_id",
                [],
            )
        row = rows[0] if rows else {}
        return OrgCardTemplate(
            enabled=bool(row.get("enabled", False)),
            template=row.get("template"),
            version=int(row.get("version", 0)),
            updated_at=row.get("updated_at"),
            exempt_agents=[r["agent_id"] for r in exempt],
            agents_rewritten=agents_rewritten,
        )

    async def put_template(
        self, enabled: bool | None, template: dict[str, Any] | None, *, set_template: bool
    ) -> OrgCardTemplate:
        """Change the enabled flag and/or the template (``set_template``: the body had one)."""
        async with self._db.connection() as conn:
            await conn.execute(
                "INSERT INTO org_card_template AS t (id, enabled, template, version)"
                " VALUES (true, COALESCE(%(enabled)s, false), %(template)s, 1)"
                " ON CONFLICT (id) DO UPDATE SET"
                " enabled = COALESCE(%(enabled)s, t.enabled),"
                " template = CASE WHEN %(set)s THEN EXCLUDED.template ELSE t.template END,"
                " version = t.version + 1, updated_at = now()",
                {
                    "enabled": enabled,
                    "template": None if template is None else _jsonb(template),
                    "set": set_template,
                },
            )
        rewritten = await self.rewrite_all("org card template changed")
        return await self.get_template(rewritten)

    async def get_org_values(self, agents_rewritten: int | None = None) -> OrgConscienceValues:
        async with self._db.connection() as conn:
            rows = await _rows(
                conn,
                'SELECT enabled, mode, "values", version, updated_at FROM org_conscience_values',
                [],
            )
        row = rows[0] if rows else {}
        return OrgConscienceValues(
            enabled=bool(row.get("enabled", False)),
            mode=row.get("mode", "augment"),
            values=_values(row.get("values")) or [],
            version=int(row.get("version", 0)),
            updated_at=row.get("updated_at"),
            agents_rewritten=agents_rewritten,
        )

    async def put_org_values(
        self,
        enabled: bool | None,
        mode: ConscienceMode | None,
        values: list[ConscienceValue] | None,
    ) -> OrgConscienceValues:
        async with self._db.connection() as conn:
            await conn.execute(
                'INSERT INTO org_conscience_values AS v (id, enabled, mode, "values", version)'
                " VALUES (true, COALESCE(%(enabled)s, false), COALESCE(%(mode)s, 'augment'),"
                " COALESCE(%(values)s, '[]'::jsonb), 1)"
                " ON CONFLICT (id) DO UPDATE SET"
                " enabled = COALESCE(%(enabled)s, v.enabled), mode = COALESCE(%(mode)s, v.mode),"
                ' "values" = COALESCE(%(values)s, v."values"),'
                " version = v.version + 1, updated_at = now()",
                {
                    "enabled": enabled,
                    "mode": mode,
                    "values": None if values is None else _jsonb(msgspec.to_builtins(values)),
                },
            )
        rewritten = await self.rewrite_all("org conscience values changed")
        return await self.get_org_values(rewritten)
