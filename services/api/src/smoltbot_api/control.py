"""Agent settings and containment: PostgreSQL first, then ``cfg:{agent}`` (architecture §4).

The ``agents`` row is the system of record for everything ``cfg:{agent}`` holds
(``AgentConfig``). A change is one PostgreSQL transaction (the row locked, its settings and
``cfg_version`` updated, a containment action appended to ``agent_containment_log`` with the
operator as actor), then ``AgentState.put`` writes the whole config with that version, so the
version in Redis never goes backwards and the gateways see it on their next config read.

- The verifier's auto-containment writes ``cfg:{agent}`` only (its log row arrives through the
  persister). A change therefore starts from whichever of the row and ``cfg:{agent}`` has the
  higher version and writes ``max(both) + 1``; reads overlay a newer ``cfg:{agent}`` on the row.
- Redis unreachable before the commit: 503, nothing changed. Redis failing after the commit:
  200 with ``cfg_synced: false``; the reconcile loop writes it within seconds.
- The reconcile loop (one replica at a time, under a transaction-level advisory lock) compares
  every agent's row with ``cfg:{agent}``: an older or missing key is rewritten from the row
  (``AgentState.put``), a newer key (auto-containment) is adopted into the row.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row
from redis.asyncio import Redis
from redis.exceptions import RedisError
from smoltbot_agentstate import CFG_FIELD, AgentState, decode_config
from smoltbot_contracts import AgentConfig, ContainmentStatus
from smoltbot_db.agents import CONFIG_COLUMNS, config_of_row

from smoltbot_api.db import Database
from smoltbot_api.errors import (
    ConflictError,
    NotFoundError,
    ServiceUnavailableError,
    ValidationError,
)
from smoltbot_api.metrics import CFG_REPAIRS
from smoltbot_api.schemas_control import (
    ContainmentChange,
    ContainmentLogEntry,
    ContainmentState,
    EnforcementSettings,
    EnforcementUpdate,
)

__all__ = [
    "RECONCILE_INTERVAL_S",
    "AgentControl",
    "ContainmentAction",
    "api_redis_client",
]

log = logging.getLogger(__name__)

RECONCILE_INTERVAL_S = 5.0
RECONCILE_BATCH = 500
# pg_try_advisory_xact_lock key of the reconcile pass ("smoltcfg" in ASCII).
RECONCILE_LOCK_KEY = 0x736D6F6C74636667
PUT_ATTEMPTS = 4
OPERATOR = "operator"

_CONFIG_COLUMNS = CONFIG_COLUMNS
_ROW_SELECT = sql.SQL(
    "SELECT id, {cols}, contained_at, contained_by, containment_reason FROM agents"
).format(cols=sql.SQL(", ").join(sql.Identifier(c) for c in _CONFIG_COLUMNS))
_ROW_UPDATE = sql.SQL(
    "UPDATE agents SET {sets}, contained_at = %(contained_at)s, contained_by = %(contained_by)s,"
    " containment_reason = %(containment_reason)s WHERE id = %(id)s"
).format(
    sets=sql.SQL(", ").join(
        sql.SQL("{} = {}").format(sql.Identifier(c), sql.Placeholder(c)) for c in _CONFIG_COLUMNS
    )
)
_LOG_COLUMNS = sql.SQL(
    "id, action, actor, reason, previous_status, new_status, checkpoint_id,"
    " consecutive_violations, threshold, decided_at, created_at"
)


def api_redis_client(url: str) -> Redis:
    """Short timeouts: a request must not hang on a Redis that is gone (it answers 503)."""
    return Redis.from_url(
        url,
        decode_responses=False,
        socket_timeout=2.0,
        socket_connect_timeout=1.0,
        health_check_interval=30,
    )


def _row_values(config: AgentConfig) -> dict[str, Any]:
    return {
        "enforcement_mode": config.enforcement_mode,
        "containment_status": config.containment,
        "nudge_strategy": config.nudge_strategy,
        "nudge_rate": config.nudge_rate,
        "nudge_threshold": config.nudge_threshold,
        "failure_policy": config.failure_policy,
        "aip_enabled": config.aip_enabled,
        "aap_enabled": config.aap_enabled,
        "auto_containment_threshold": config.auto_containment_threshold,
        "cfg_version": config.cfg_version,
    }


def _same_settings(a: AgentConfig, b: AgentConfig) -> bool:
    return msgspec.structs.replace(a, cfg_version=0) == msgspec.structs.replace(b, cfg_version=0)


@dataclass(frozen=True, slots=True)
class ContainmentAction:
    """An operator's containment action: the state it needs and the one it leaves."""

    name: str
    allowed_from: tuple[ContainmentStatus, ...]
    new_status: ContainmentStatus
    default_reason: str


PAUSE = ContainmentAction("pause", ("active",), "paused", "paused by an operator")
KILL = ContainmentAction("kill", ("active", "paused"), "killed", "killed by an operator")
RESUME = ContainmentAction("resume", ("paused",), "active", "resumed by an operator")
REACTIVATE = ContainmentAction("reactivate", ("killed",), "active", "reactivated by an operator")
ACTIONS = {a.name: a for a in (PAUSE, KILL, RESUME, REACTIVATE)}

_WRONG_STATE = {
    ("pause", "paused"): "agent is already paused",
    ("pause", "killed"): "agent is killed; reactivate it instead",
    ("kill", "killed"): "agent is already killed",
    ("resume", "active"): "agent is not contained",
    ("resume", "killed"): "agent is killed; use reactivate",
    ("reactivate", "active"): "agent is not contained",
    ("reactivate", "paused"): "agent is paused, not killed; use resume",
}


@dataclass(frozen=True, slots=True)
class _Row:
    config: AgentConfig
    """The row's config, overlaid by a newer ``cfg:{agent}``."""
    pg_version: int
    contained_at: datetime | None
    contained_by: str | None
    containment_reason: str | None


@dataclass(frozen=True, slots=True)
class _Written:
    config: AgentConfig
    row: _Row
    synced: bool


Decide = Callable[[AgentConfig], AgentConfig]


class AgentControl:
    """The write-through of agent settings and containment, and the reconcile loop."""

    def __init__(
        self,
        db: Database,
        redis: Redis,
        prefix: str,
        *,
        reconcile_interval_s: float = RECONCILE_INTERVAL_S,
    ) -> None:
        self._db = db
        self._redis = redis
        self._state = AgentState(redis, prefix)
        self.reconcile_interval_s = reconcile_interval_s
        """Seconds between reconcile passes; 0 = no loop (set before :meth:`start`)."""
        self._task: asyncio.Task[None] | None = None

    @property
    def state(self) -> AgentState:
        return self._state

    # -- reads ---------------------------------------------------------------------------------

    async def _redis_config(self, agent_id: str, *, required: bool) -> AgentConfig | None:
        """``cfg:{agent}`` (None when missing); Redis down: 503 when ``required``, else None."""
        try:
            raw = await self._redis.hget(self._state.key(agent_id), CFG_FIELD)
        except (RedisError, OSError) as exc:
            if required:
                raise ServiceUnavailableError(
                    "Redis unavailable, nothing was changed; retry later",
                    detail=f"redis: {type(exc).__name__}: {exc}",
                ) from exc
            log.warning("cfg read failed; answering from PostgreSQL", extra={"error": str(exc)})
            return None
        return None if raw is None else decode_config(raw)

    async def _select(self, conn: AsyncConnection, agent_id: str, *, lock: bool) -> dict[str, Any]:
        query = _ROW_SELECT + sql.SQL(" WHERE id = %s") + sql.SQL(" FOR UPDATE" if lock else "")
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(query, [agent_id])
            row = await cur.fetchone()
        if row is None:
            raise NotFoundError(f"agent {agent_id} not found")
        return row

    async def _latest_auto(self, conn: AsyncConnection, agent_id: str) -> dict[str, Any] | None:
        """The agent's latest log row when it is the verifier's (None: its row has not been
        persisted yet, the latest is an operator's)."""
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                "SELECT action, actor, reason, decided_at FROM agent_containment_log"
                " WHERE agent_id = %s ORDER BY decided_at DESC, id DESC LIMIT 1",
                [agent_id],
            )
            latest = await cur.fetchone()
        return latest if latest is not None and latest["action"] == "auto_pause" else None

    async def _effective(
        self,
        conn: AsyncConnection,
        row: dict[str, Any],
        cached: AgentConfig | None,
    ) -> _Row:
        """The row, overlaid by ``cached`` when that is newer (an auto-containment the row has
        not adopted yet); who contained it then comes from the log."""
        config = config_of_row(row)
        at, by, reason = row["contained_at"], row["contained_by"], row["containment_reason"]
        if cached is not None and cached.cfg_version > config.cfg_version:
            if cached.containment != config.containment:
                if cached.containment == "active":
                    at, by, reason = None, None, None
                else:
                    entry = await self._latest_auto(conn, row["id"])
                    at = entry["decided_at"] if entry else None
                    by = entry["actor"] if entry else "system"
                    reason = entry["reason"] if entry else "auto-containment (not logged yet)"
            config = cached
        return _Row(config, row["cfg_version"], at, by, reason)

    async def enforcement(self, agent_id: str) -> EnforcementSettings:
        cached = await self._redis_config(agent_id, required=False)
        async with self._db.connection() as conn:
            current = await self._effective(
                conn, await self._select(conn, agent_id, lock=False), cached
            )
        return _settings(agent_id, current.config)

    async def containment(self, agent_id: str, limit: int, offset: int) -> ContainmentState:
        cached = await self._redis_config(agent_id, required=False)
        async with self._db.connection() as conn, conn.transaction():
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            current = await self._effective(
                conn, await self._select(conn, agent_id, lock=False), cached
            )
            async with conn.cursor(row_factory=dict_row) as cur:
                await cur.execute(
                    sql.SQL(
                        "SELECT {cols} FROM agent_containment_log WHERE agent_id = %s"
                        " ORDER BY decided_at DESC, id DESC LIMIT %s OFFSET %s"
                    ).format(cols=_LOG_COLUMNS),
                    [agent_id, limit, offset],
                )
                entries = await cur.fetchall()
                await cur.execute(
                    "SELECT count(*) AS n FROM agent_containment_log WHERE agent_id = %s",
                    [agent_id],
                )
                counted = await cur.fetchone()
        config = current.config
        return ContainmentState(
            agent_id=agent_id,
            status=config.containment,
            contained_at=current.contained_at,
            contained_by=current.contained_by,
            containment_reason=current.containment_reason,
            auto_containment_threshold=config.auto_containment_threshold,
            cfg_version=config.cfg_version,
            log=[msgspec.convert(e, ContainmentLogEntry) for e in entries],
            total=int(counted["n"]) if counted else 0,
            limit=limit,
            offset=offset,
        )

    # -- writes --------------------------------------------------------------------------------

    async def _write(
        self,
        agent_id: str,
        decide: Decide,
        *,
        action: ContainmentAction | None = None,
        reason: str | None = None,
        actor: str = OPERATOR,
    ) -> _Written:
        """Lock the row, decide from the newer of row and ``cfg:{agent}``, commit the row (and a
        log row for a containment action), then write ``cfg:{agent}`` with the new version."""
        cached = await self._redis_config(agent_id, required=True)
        async with self._db.connection() as conn, conn.transaction():
            row = await self._select(conn, agent_id, lock=True)
            current = await self._effective(conn, row, cached)
            wanted = decide(current.config)
            top = max(row["cfg_version"], cached.cfg_version if cached else 0)
            new = msgspec.structs.replace(wanted, cfg_version=top + 1)
            at, by, why = current.contained_at, current.contained_by, current.containment_reason
            if action is not None:
                now = datetime.now(UTC)
                why = reason or action.default_reason
                if new.containment == "active":
                    at, by, why = None, None, None
                else:
                    at, by = now, actor
                await conn.execute(
                    "INSERT INTO agent_containment_log (id, agent_id, action, actor, reason,"
                    " previous_status, new_status, decided_at) VALUES (%s, %s, %s, %s, %s, %s,"
                    " %s, %s)",
                    [
                        f"ctl-{uuid.uuid4()}",
                        agent_id,
                        action.name,
                        actor,
                        reason or action.default_reason,
                        current.config.containment,
                        new.containment,
                        now,
                    ],
                )
            await conn.execute(
                _ROW_UPDATE,
                {
                    **_row_values(new),
                    "contained_at": at,
                    "contained_by": by,
                    "containment_reason": why,
                    "id": agent_id,
                },
            )
        synced = await self._put(agent_id, new)
        return _Written(new, _Row(new, new.cfg_version, at, by, why), synced=synced is not None)

    async def _put(self, agent_id: str, config: AgentConfig) -> AgentConfig | None:
        """Write ``config`` to ``cfg:{agent}``; when a newer version got there first (a
        concurrent auto-containment), move the row and the config above it and write again,
        so the operator's later decision wins. None: Redis failed (the reconcile loop
        repairs it)."""
        try:
            for _ in range(PUT_ATTEMPTS):
                result = await self._state.put(agent_id, config)
                if result.written or _same_settings(result.config, config):
                    return result.config
                bumped = msgspec.structs.replace(config, cfg_version=result.config.cfg_version + 1)
                async with self._db.connection() as conn:
                    await conn.execute(
                        "UPDATE agents SET cfg_version = %s WHERE id = %s AND cfg_version = %s",
                        [bumped.cfg_version, agent_id, config.cfg_version],
                    )
                config = bumped
        except (RedisError, OSError) as exc:
            log.warning(
                "cfg write-through failed after the PostgreSQL commit; the reconcile loop will "
                "repair it",
                extra={"agent_id": agent_id, "error": f"{type(exc).__name__}: {exc}"[:300]},
            )
            return None
        log.warning("cfg write-through kept losing to newer versions", extra={"agent_id": agent_id})
        return None

    async def update_enforcement(
        self, agent_id: str, update: EnforcementUpdate
    ) -> EnforcementSettings:
        changes = {k: v for k, v in msgspec.structs.asdict(update).items() if v is not None}
        if not changes:
            raise ValidationError(
                "request body must set at least one of: "
                + ", ".join(f.name for f in msgspec.structs.fields(EnforcementUpdate))
            )
        threshold = changes.get("auto_containment_threshold")
        if threshold == 1:
            raise ValidationError(
                "auto_containment_threshold must be 0 (off) or an integer >= 2 (got 1)"
            )
        if "mode" in changes:
            changes["enforcement_mode"] = changes.pop("mode")
        written = await self._write(
            agent_id, lambda config: msgspec.structs.replace(config, **changes)
        )
        answer = _settings(agent_id, written.config)
        answer.updated = True
        answer.cfg_synced = written.synced
        return answer

    async def contain(
        self,
        agent_id: str,
        action: ContainmentAction,
        reason: str | None,
        *,
        actor: str = OPERATOR,
    ) -> ContainmentChange:
        previous: list[ContainmentStatus] = []

        def decide(config: AgentConfig) -> AgentConfig:
            if config.containment not in action.allowed_from:
                raise ConflictError(_WRONG_STATE[(action.name, config.containment)])
            previous.append(config.containment)
            return msgspec.structs.replace(config, containment=action.new_status)

        written = await self._write(agent_id, decide, action=action, reason=reason, actor=actor)
        return ContainmentChange(
            agent_id=agent_id,
            containment_status=written.config.containment,
            previous_status=previous[-1],
            contained_at=written.row.contained_at,
            contained_by=written.row.contained_by,
            containment_reason=written.row.containment_reason,
            cfg_version=written.config.cfg_version,
            cfg_synced=written.synced,
        )

    # -- reconcile -----------------------------------------------------------------------------

    async def reconcile_once(self) -> dict[str, int] | None:
        """One pass over every agent; None when another replica holds the lock.

        Returns how many keys were rewritten (``redis``) and rows adopted (``postgres``)."""
        repaired = {"redis": 0, "postgres": 0}
        async with self._db.connection() as conn, conn.transaction():
            cur = await conn.execute("SELECT pg_try_advisory_xact_lock(%s)", [RECONCILE_LOCK_KEY])
            locked = await cur.fetchone()
            if not locked or not locked[0]:
                return None
            after = ""
            while True:
                async with conn.cursor(row_factory=dict_row) as dcur:
                    await dcur.execute(
                        _ROW_SELECT + sql.SQL(" WHERE id > %s ORDER BY id LIMIT %s"),
                        [after, RECONCILE_BATCH],
                    )
                    rows = await dcur.fetchall()
                if not rows:
                    break
                after = rows[-1]["id"]
                await self._reconcile_batch(conn, rows, repaired)
        return repaired

    async def _reconcile_batch(
        self, conn: AsyncConnection, rows: Sequence[dict[str, Any]], repaired: dict[str, int]
    ) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for row in rows:
                pipe.hget(self._state.key(row["id"]), CFG_FIELD)
            raws = await pipe.execute()
        for row, raw in zip(rows, raws, strict=True):
            pg = config_of_row(row)
            if raw is None:
                if pg.cfg_version == 0:
                    continue  # never configured: a missing key means the same defaults
                cached = None
            else:
                cached = decode_config(raw)
            if cached is None or cached.cfg_version < pg.cfg_version:
                result = await self._state.put(row["id"], pg)
                if result.written:
                    repaired["redis"] += 1
                    CFG_REPAIRS.labels("redis").inc()
                    log.info(
                        "cfg rewritten from PostgreSQL",
                        extra={"agent_id": row["id"], "cfg_version": pg.cfg_version},
                    )
            elif cached.cfg_version > pg.cfg_version:
                current = await self._effective(conn, row, cached)
                cur = await conn.execute(
                    _ROW_UPDATE + sql.SQL(" AND cfg_version = %(pg_version)s"),
                    {
                        **_row_values(cached),
                        "contained_at": current.contained_at,
                        "contained_by": current.contained_by,
                        "containment_reason": current.containment_reason,
                        "id": row["id"],
                        "pg_version": pg.cfg_version,
                    },
                )
                if cur.rowcount:
                    repaired["postgres"] += 1
                    CFG_REPAIRS.labels("postgres").inc()
                    log.info(
                        "newer cfg adopted into PostgreSQL",
                        extra={"agent_id": row["id"], "cfg_version": cached.cfg_version},
                    )

    async def _reconcile_loop(self) -> None:
        while True:
            await asyncio.sleep(self.reconcile_interval_s)
            if not self._db.connected:
                continue
            try:
                await self.reconcile_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the loop must outlive any one failure
                log.warning(
                    "cfg reconcile pass failed; retrying next interval",
                    extra={"error": f"{type(exc).__name__}: {exc}"[:300]},
                )

    def start(self) -> None:
        if self._task is None and self.reconcile_interval_s > 0:
            self._task = asyncio.create_task(self._reconcile_loop(), name="smoltbot-api-reconcile")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._redis.aclose()


def _settings(agent_id: str, config: AgentConfig) -> EnforcementSettings:
    return EnforcementSettings(
        agent_id=agent_id,
        enforcement_mode=config.enforcement_mode,
        nudge_strategy=config.nudge_strategy,
        nudge_rate=config.nudge_rate,
        nudge_threshold=config.nudge_threshold,
        failure_policy=config.failure_policy,
        aip_enabled=config.aip_enabled,
        aap_enabled=config.aap_enabled,
        auto_containment_threshold=config.auto_containment_threshold,
        cfg_version=config.cfg_version,
    )
