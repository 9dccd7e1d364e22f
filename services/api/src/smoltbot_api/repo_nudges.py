"""SQL of the nudge endpoint: an agent's nudges (the ``nudges`` table written by the persister,
migration 0007), newest first, read like :mod:`smoltbot_api.repo_reads` (page and total in one
snapshot; 404 only for an unknown agent without rows)."""

from __future__ import annotations

from psycopg import sql
from smoltbot_contracts import NudgeStatus

from smoltbot_api.errors import NotFoundError
from smoltbot_api.repository import Repository, _fetch_all, _fetch_page, _Listing
from smoltbot_api.schemas_nudges import NudgeList

__all__ = ["NudgeRepository"]

_NUDGES = _Listing(
    sql.SQL(
        "SELECT id, agent_id, checkpoint_id, created_at, text, status, delivered_at,"
        " delivered_event_id FROM nudges"
    ),
    # A row known only from its delivery has no created_at yet: it sorts last.
    sql.SQL("created_at DESC NULLS LAST, id DESC"),
    "nudges",
    NudgeList,
    "nudges",
)


class NudgeRepository:
    def __init__(self, repo: Repository) -> None:
        self._repo = repo

    async def list_nudges(
        self, agent_id: str, status: NudgeStatus | None, limit: int, offset: int
    ) -> NudgeList:
        conditions: list[tuple[str, object]] = [("agent_id", agent_id)]
        if status is not None:
            conditions.append(("status", status))
        async with self._repo.database.connection() as conn:
            page = await _fetch_page(conn, _NUDGES, conditions, limit, offset)
            if page.total == 0:
                known = await _fetch_all(
                    conn, sql.SQL("SELECT 1 AS one FROM agents WHERE id = %s"), [agent_id]
                )
                if not known:
                    raise NotFoundError(f"agent {agent_id!r} not found")
        return page
