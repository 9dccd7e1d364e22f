"""``GET /v1/agents/{agent_id}/nudges`` (docs/api.md, "Nudges"): the conscience nudges the
verifier made for an agent and whether they were delivered. Read scope (a GET)."""

from __future__ import annotations

from typing import Annotated

from litestar import get
from litestar.di import NamedDependency, Provide
from litestar.handlers import HTTPRouteHandler
from litestar.params import Parameter, PathParameter
from smoltbot_contracts import NudgeStatus

from smoltbot_api.repo_nudges import NudgeRepository
from smoltbot_api.repository import Repository
from smoltbot_api.schemas_nudges import NudgeList

__all__ = ["nudge_route_handlers"]

_Limit = Annotated[int, Parameter(ge=1, le=1000, description="Page size (1-1000).")]
_Offset = Annotated[int, Parameter(ge=0, description="Rows to skip (>= 0).")]
_AgentId = Annotated[str, PathParameter(description="Agent id, e.g. smolt-1a2b3c4d.")]


def _provide_nudges(repo: NamedDependency[Repository]) -> NudgeRepository:
    return NudgeRepository(repo)


@get(
    "/agents/{agent_id:str}/nudges",
    summary="An agent's conscience nudges, newest first",
    dependencies={"nudges": Provide(_provide_nudges, sync_to_thread=False)},
)
async def list_nudges(
    *,
    nudges: NamedDependency[NudgeRepository],
    agent_id: _AgentId,
    status: Annotated[
        NudgeStatus | None, Parameter(description="Only nudges with this status.")
    ] = None,
    limit: _Limit = 50,
    offset: _Offset = 0,
) -> NudgeList:
    return await nudges.list_nudges(agent_id, status, limit, offset)


def nudge_route_handlers() -> list[HTTPRouteHandler]:
    """The handlers of this module, mounted under ``/v1`` by ``routes.v1_route_handlers``."""
    return [list_nudges]
