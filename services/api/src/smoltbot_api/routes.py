"""The ``/v1`` read endpoints (self-hosting.md §2.3). Handlers are thin: validate, query, shape."""

from __future__ import annotations

from typing import Annotated

from litestar import get
from litestar.di import NamedDependency
from litestar.handlers import HTTPRouteHandler
from litestar.params import Parameter, PathParameter
from smoltbot_contracts import Verdict

from smoltbot_api.repository import Repository
from smoltbot_api.routes_api_keys import api_key_route_handlers
from smoltbot_api.routes_cards import card_route_handlers
from smoltbot_api.routes_control import control_route_handlers
from smoltbot_api.routes_nudges import nudge_route_handlers
from smoltbot_api.routes_reads import SessionId, Since, Until, read_route_handlers, time_filter
from smoltbot_api.routes_reverify import reverify_route_handlers
from smoltbot_api.routes_webhooks import webhook_route_handlers
from smoltbot_api.schemas import (
    Agent,
    AgentList,
    Checkpoint,
    CheckpointList,
    ExchangeList,
    Trace,
    TraceList,
)

__all__ = ["v1_route_handlers"]

MAX_LIMIT = 1000

Limit = Annotated[int, Parameter(ge=1, le=MAX_LIMIT, description="Page size (1-1000).")]
Offset = Annotated[int, Parameter(ge=0, description="Rows to skip (>= 0).")]
AgentId = Annotated[str, PathParameter(description="Agent id, e.g. smolt-1a2b3c4d.")]
CheckpointId = Annotated[str, PathParameter(description="Checkpoint id, e.g. ic-<uuid>.")]
TraceId = Annotated[str, PathParameter(description="Trace id, e.g. tr-<event id>.")]
Repo = NamedDependency[Repository]


@get("/agents", summary="List agents, most recently seen first")
async def list_agents(repo: Repo, limit: Limit = 50, offset: Offset = 0) -> AgentList:
    return await repo.list_agents(limit, offset)


@get("/agents/{agent_id:str}", summary="Get one agent")
async def get_agent(repo: Repo, agent_id: AgentId) -> Agent:
    return await repo.get_agent(agent_id)


@get("/agents/{agent_id:str}/traces", summary="An agent's AP-Traces, newest first")
async def list_traces(
    *,
    repo: Repo,
    agent_id: AgentId,
    limit: Limit = 50,
    offset: Offset = 0,
    session_id: SessionId = None,
    since: Since = None,
    until: Until = None,
) -> TraceList:
    conditions: list[tuple[str, object]] = (
        [] if session_id is None else [("session_id", session_id)]
    )
    conditions += time_filter('"timestamp"', since, until)
    return await repo.list_traces(agent_id, limit, offset, conditions)


@get("/agents/{agent_id:str}/checkpoints", summary="An agent's integrity checkpoints, newest first")
async def list_checkpoints(
    *,
    repo: Repo,
    agent_id: AgentId,
    limit: Limit = 20,
    offset: Offset = 0,
    verdict: Annotated[
        Verdict | None, Parameter(description="Only checkpoints with this verdict.")
    ] = None,
    session_id: Annotated[
        str | None, Parameter(description="Only checkpoints of this session.")
    ] = None,
    since: Since = None,
    until: Until = None,
) -> CheckpointList:
    return await repo.list_checkpoints(
        agent_id,
        limit,
        offset,
        verdict=verdict,
        session_id=session_id,
        time_conditions=time_filter('"timestamp"', since, until),
    )


@get("/agents/{agent_id:str}/checkpoints/{checkpoint_id:str}", summary="Get one checkpoint")
async def get_checkpoint(repo: Repo, agent_id: AgentId, checkpoint_id: CheckpointId) -> Checkpoint:
    return await repo.get_checkpoint(agent_id, checkpoint_id)


@get("/agents/{agent_id:str}/exchanges", summary="An agent's calls (usage metadata), newest first")
async def list_exchanges(
    repo: Repo, agent_id: AgentId, limit: Limit = 50, offset: Offset = 0
) -> ExchangeList:
    return await repo.list_exchanges(agent_id, limit, offset)


@get("/traces/{trace_id:str}", summary="Get one AP-Trace")
async def get_trace(repo: Repo, trace_id: TraceId) -> Trace:
    return await repo.get_trace(trace_id)


def v1_route_handlers() -> list[HTTPRouteHandler]:
    """Every handler mounted under ``/v1`` (behind the guard of ``auth.py``: declare a
    mutating route's scope with ``opt=scope(...)``)."""
    return [
        list_agents,
        get_agent,
        list_traces,
        list_checkpoints,
        get_checkpoint,
        list_exchanges,
        get_trace,
        *read_route_handlers(),
        *control_route_handlers(),
        *card_route_handlers(),
        *api_key_route_handlers(),
        *webhook_route_handlers(),
        *reverify_route_handlers(),
        *nudge_route_handlers(),
    ]
