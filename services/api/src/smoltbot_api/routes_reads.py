"""The owner's read endpoints (docs/api.md, "Reading data"): every agent's traces, drift alerts,
integrity scores, the unified timeline and usage per model. Thin handlers: validate, query, shape.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from litestar import get
from litestar.di import NamedDependency, Provide
from litestar.handlers import HTTPRouteHandler
from litestar.params import Parameter, PathParameter

from smoltbot_api.errors import InvalidRequestError
from smoltbot_api.repo_reads import (
    TIMELINE_KINDS,
    Condition,
    ReadRepository,
    aware,
    time_range,
)
from smoltbot_api.repository import Repository
from smoltbot_api.schemas import TraceList
from smoltbot_api.schemas_reads import (
    AapIntegrity,
    AgentIntegrity,
    AipIntegrity,
    DriftAlertList,
    TimelineKind,
    TimelinePage,
    Usage,
)

__all__ = ["SessionId", "Since", "Until", "read_route_handlers", "time_filter"]

_MAX_LIMIT = 1000

Since = Annotated[
    datetime | None,
    Parameter(description="Only rows at or after this ISO 8601 time (no offset = UTC)."),
]
Until = Annotated[
    datetime | None,
    Parameter(description="Only rows before this ISO 8601 time (no offset = UTC)."),
]
SessionId = Annotated[str | None, Parameter(description="Only rows of this session.")]
_Limit = Annotated[int, Parameter(ge=1, le=_MAX_LIMIT, description="Page size (1-1000).")]
_Offset = Annotated[int, Parameter(ge=0, description="Rows to skip (>= 0).")]
_AgentId = Annotated[str, PathParameter(description="Agent id, e.g. smolt-1a2b3c4d.")]
_Reads = NamedDependency[ReadRepository]


def _provide_reads(repo: NamedDependency[Repository]) -> ReadRepository:
    return ReadRepository(repo)


_DEPENDENCIES = {"reads": Provide(_provide_reads, sync_to_thread=False)}


def time_filter(column: str, since: datetime | None, until: datetime | None) -> list[Condition]:
    """The conditions of a ``since``/``until`` pair; 400 when the range is empty by definition."""
    conditions = time_range(column, since, until)
    if since is not None and until is not None and aware(since) >= aware(until):
        raise InvalidRequestError(
            "invalid query parameter: since must be before until"
            f" (got since={since.isoformat()}, until={until.isoformat()})"
        )
    return conditions


@get(
    "/traces",
    summary="Every agent's AP-Traces, newest first",
    dependencies=_DEPENDENCIES,
)
async def list_all_traces(
    *,
    reads: _Reads,
    agent_id: Annotated[str | None, Parameter(description="Only this agent's traces.")] = None,
    session_id: SessionId = None,
    since: Since = None,
    until: Until = None,
    limit: _Limit = 50,
    offset: _Offset = 0,
) -> TraceList:
    filters = {"agent_id": agent_id, "session_id": session_id}
    conditions: list[Condition] = [(k, v) for k, v in filters.items() if v is not None]
    conditions += time_filter('"timestamp"', since, until)
    return await reads.list_traces(conditions, limit, offset)


@get(
    "/agents/{agent_id:str}/drift-alerts",
    summary="An agent's drift alerts (AAP and AIP), newest first",
    dependencies=_DEPENDENCIES,
)
async def list_drift_alerts(
    *,
    reads: _Reads,
    agent_id: _AgentId,
    source: Annotated[
        Literal["aap", "aip"] | None, Parameter(description="Only alerts of this protocol.")
    ] = None,
    session_id: SessionId = None,
    since: Since = None,
    until: Until = None,
    limit: _Limit = 50,
    offset: _Offset = 0,
) -> DriftAlertList:
    filters = {"source": source, "session_id": session_id}
    conditions: list[Condition] = [(k, v) for k, v in filters.items() if v is not None]
    conditions += time_filter("detected_at", since, until)
    return await reads.list_drift_alerts(agent_id, conditions, limit, offset)


@get(
    "/agents/{agent_id:str}/integrity",
    summary="An agent's AAP and AIP integrity scores",
    dependencies=_DEPENDENCIES,
)
async def get_integrity(reads: _Reads, agent_id: _AgentId) -> AgentIntegrity:
    return await reads.integrity(agent_id)


@get(
    "/agents/{agent_id:str}/integrity/aip",
    summary="An agent's AIP integrity score (the reference's path)",
    dependencies=_DEPENDENCIES,
)
async def get_aip_integrity(reads: _Reads, agent_id: _AgentId) -> AipIntegrity:
    return (await reads.integrity(agent_id)).aip


@get(
    "/integrity/{agent_id:str}",
    summary="An agent's AAP integrity score (the reference's path)",
    dependencies=_DEPENDENCIES,
)
async def get_aap_integrity(reads: _Reads, agent_id: _AgentId) -> AapIntegrity:
    return (await reads.integrity(agent_id)).aap


@get(
    "/agents/{agent_id:str}/timeline",
    summary="An agent's traces, checkpoints, drift alerts and containment changes, newest first",
    dependencies=_DEPENDENCIES,
)
async def get_timeline(
    *,
    reads: _Reads,
    agent_id: _AgentId,
    kind: Annotated[
        list[TimelineKind] | None,
        Parameter(description="Only these kinds (repeatable); default: every kind."),
    ] = None,
    since: Since = None,
    until: Until = None,
    limit: _Limit = 50,
    offset: _Offset = 0,
) -> TimelinePage:
    time_filter("ts", since, until)  # validates the range
    kinds = [k for k in TIMELINE_KINDS if kind is None or k in kind]
    return await reads.timeline(
        agent_id, kinds=kinds, since=since, until=until, limit=limit, offset=offset
    )


@get(
    "/agents/{agent_id:str}/usage",
    summary="An agent's calls and tokens per provider and model",
    dependencies=_DEPENDENCIES,
)
async def get_usage(
    *, reads: _Reads, agent_id: _AgentId, since: Since = None, until: Until = None
) -> Usage:
    time_filter("completed_at", since, until)  # validates the range
    return await reads.usage(agent_id, since, until)


def read_route_handlers() -> list[HTTPRouteHandler]:
    """The handlers of this module, mounted under ``/v1`` by ``routes.v1_route_handlers``."""
    return [
        list_all_traces,
        list_drift_alerts,
        get_integrity,
        get_aip_integrity,
        get_aap_integrity,
        get_timeline,
        get_usage,
    ]
