"""Re-verification of an agent's stored traces and checkpoints (docs/api.md "Re-verify").

* AAP: the newest traces (after ``offset``, at most :data:`MAX_AAP`) are verified again with
  ``smoltbot_analysis.aap_verify.verify`` (the verifier's own function) against the agent's
  CURRENT card as PostgreSQL resolves it (org template and conscience values layered by
  ``smoltbot_analysis.cards.resolve_record``), each as of its exchange's completion time.
* AIP: the newest non-clear checkpoints (at most :data:`MAX_AIP`) have their stored concerns put
  through the current deterministic gate (``smoltbot_analysis.gate``). The thinking text is not
  stored, so nothing is re-analysed; a verdict changes only when the gate's rules did.

Runs are synchronous and bounded; each answer is stored in ``reverify_runs`` for
``GET /v1/agents/{id}/reverify/{run_id}``. Stored verifications and checkpoints stay as they are.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import msgspec
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from smoltbot_analysis.aap_verify import verify
from smoltbot_analysis.cards import EffectiveCard, resolve_record
from smoltbot_analysis.gate import derive_verdict
from smoltbot_contracts import APTrace, Concern, Verdict
from smoltbot_db.cards import RECORDS_SQL, card_record

from smoltbot_api.db import Database
from smoltbot_api.errors import NotFoundError
from smoltbot_api.schemas_reverify import (
    AapResult,
    AipResult,
    ReverifyAap,
    ReverifyAip,
    ReverifyError,
    ReverifyRun,
)

__all__ = ["MAX_AAP", "MAX_AIP", "ReverifyRepository"]

MAX_AAP = 40  # traces per run (the reference's batch)
MAX_AIP = 20  # checkpoints per run
_ENC = msgspec.json.Encoder()

_TRACES_SQL = """
SELECT t.trace_id, t.trace_json, COALESCE(v.verified, t.verified) AS previous_verified,
       COALESCE(e.completed_at, t."timestamp") AS at
FROM traces t
LEFT JOIN verifications v ON v.trace_id = t.trace_id
LEFT JOIN exchanges e ON e.exchange_id = t.exchange_id
WHERE t.agent_id = %s
ORDER BY t."timestamp" DESC, t.trace_id DESC
LIMIT %s OFFSET %s
"""

_CHECKPOINTS_SQL = """
SELECT checkpoint_id, verdict, concerns
FROM integrity_checkpoints
WHERE agent_id = %s AND verdict <> 'clear'
ORDER BY "timestamp" DESC, checkpoint_id DESC
LIMIT %s OFFSET %s
"""


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


def _aap(
    rows: Sequence[dict[str, Any]], card: EffectiveCard
) -> tuple[list[AapResult], list[ReverifyError]]:
    results: list[AapResult] = []
    errors: list[ReverifyError] = []
    for row in rows:
        try:
            trace = msgspec.json.decode(_ENC.encode(row["trace_json"]), type=APTrace)
        except msgspec.ValidationError as exc:
            errors.append(ReverifyError(id=row["trace_id"], error=f"stored trace: {_error(exc)}"))
            continue
        outcome = verify(trace, card.card, row["at"])
        results.append(
            AapResult(
                trace_id=row["trace_id"],
                previous_verified=row["previous_verified"],
                verified=outcome.verified,
                violations=[v.type for v in outcome.violations],
            )
        )
    return results, errors


def _aip(rows: Sequence[dict[str, Any]]) -> tuple[list[AipResult], list[ReverifyError]]:
    results: list[AipResult] = []
    errors: list[ReverifyError] = []
    for row in rows:
        try:
            concerns = msgspec.convert(row["concerns"], list[Concern])
        except msgspec.ValidationError as exc:
            errors.append(
                ReverifyError(id=row["checkpoint_id"], error=f"stored concerns: {_error(exc)}")
            )
            continue
        verdict: Verdict = derive_verdict(concerns)
        results.append(
            AipResult(
                checkpoint_id=row["checkpoint_id"],
                previous_verdict=row["verdict"],
                verdict=verdict,
                changed=verdict != row["verdict"],
            )
        )
    return results, errors


class ReverifyRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def _card(self, agent_id: str) -> EffectiveCard:
        async with self._db.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(RECORDS_SQL + " WHERE a.id = %s", [agent_id])
            row = await cur.fetchone()
        if row is None:
            raise NotFoundError(f"agent {agent_id!r} not found")
        return resolve_record(card_record(row))

    async def _rows(self, query: str, params: Sequence[object]) -> list[dict[str, Any]]:
        async with self._db.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(query, params)
            return await cur.fetchall()

    async def _store(
        self, run_id: str, agent_id: str, kind: Literal["aap", "aip"], card_id: str, body: object
    ) -> None:
        async with self._db.connection() as conn:
            await conn.execute(
                "INSERT INTO reverify_runs (id, agent_id, kind, card_id, result)"
                " VALUES (%s, %s, %s, %s, %s)",
                [
                    run_id,
                    agent_id,
                    kind,
                    card_id,
                    Jsonb(body, dumps=lambda v: _ENC.encode(v).decode()),
                ],
            )

    async def reverify_aap(self, agent_id: str, limit: int, offset: int) -> ReverifyAap:
        card = await self._card(agent_id)
        rows = await self._rows(_TRACES_SQL, [agent_id, limit, offset])
        # The SDK is CPU work; keep the event loop free for other requests meanwhile.
        results, errors = await asyncio.to_thread(_aap, rows, card)
        body = ReverifyAap(
            run_id=f"rv-{uuid.uuid4().hex}",
            agent_id=agent_id,
            card_id=card.card_id,
            total_traces_in_batch=len(rows),
            offset=offset,
            limit=limit,
            reverified=len(results),
            still_violating=sum(
                1 for r in results if not r.verified and r.previous_verified is False
            ),
            now_clean=sum(1 for r in results if r.verified and r.previous_verified is False),
            newly_violating=sum(
                1 for r in results if not r.verified and r.previous_verified is not False
            ),
            results=results,
            errors=errors,
            created_at=datetime.now(UTC),
        )
        await self._store(body.run_id, agent_id, "aap", card.card_id, body)
        return body

    async def reverify_aip(self, agent_id: str, limit: int, offset: int) -> ReverifyAip:
        card = await self._card(agent_id)
        rows = await self._rows(_CHECKPOINTS_SQL, [agent_id, limit, offset])
        results, errors = _aip(rows)
        body = ReverifyAip(
            run_id=f"rv-{uuid.uuid4().hex}",
            agent_id=agent_id,
            card_id=card.card_id,
            total_in_batch=len(rows),
            offset=offset,
            limit=limit,
            re_evaluated=len(results),
            resolved_to_clear=sum(1 for r in results if r.verdict == "clear"),
            kept_non_clear=sum(1 for r in results if r.verdict != "clear"),
            results=results,
            errors=errors,
            created_at=datetime.now(UTC),
        )
        await self._store(body.run_id, agent_id, "aip", card.card_id, body)
        return body

    async def get_run(self, agent_id: str, run_id: str) -> ReverifyRun:
        rows = await self._rows(
            "SELECT id, kind, result, created_at FROM reverify_runs"
            " WHERE id = %s AND agent_id = %s",
            [run_id, agent_id],
        )
        if not rows:
            raise NotFoundError(f"re-verification run {run_id!r} of agent {agent_id!r} not found")
        row = rows[0]
        run = ReverifyRun(
            run_id=row["id"], agent_id=agent_id, kind=row["kind"], created_at=row["created_at"]
        )
        if row["kind"] == "aap":
            run.aap = msgspec.convert(row["result"], ReverifyAap, strict=False)
        else:
            run.aip = msgspec.convert(row["result"], ReverifyAip, strict=False)
        return run
