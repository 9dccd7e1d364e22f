"""``/v1/agents/{id}/reverify`` (scope write): re-check stored traces (AAP) and checkpoints (AIP)
against the current card and gate, synchronously over a bounded batch (``repo_reverify.py``)."""

from __future__ import annotations

from typing import Annotated

from litestar import get, post
from litestar.di import NamedDependency
from litestar.handlers import HTTPRouteHandler
from litestar.params import Parameter, PathParameter

from smoltbot_api.auth import scope
from smoltbot_api.repo_reverify import MAX_AAP, MAX_AIP, ReverifyRepository
from smoltbot_api.schemas_reverify import ReverifyAap, ReverifyAip, ReverifyRun

__all__ = ["reverify_route_handlers"]

AgentId = Annotated[str, PathParameter(description="Agent id, e.g. smolt-1a2b3c4d.")]
RunId = Annotated[str, PathParameter(description="Re-verification run id, e.g. rv-<32 hex>.")]
Offset = Annotated[int, Parameter(ge=0, description="Newest rows to skip (>= 0).")]
Reverify = NamedDependency[ReverifyRepository]
_WRITE = scope("write")


@post(
    "/agents/{agent_id:str}/reverify",
    opt=_WRITE,
    status_code=200,
    summary="Re-verify the newest AP-Traces against the current card (AAP)",
    description=f"Synchronous, at most {MAX_AAP} traces per call; page with offset. The answer "
    "is stored (GET .../reverify/{run_id}); stored verifications are not changed.",
)
async def reverify_aap(
    reverify: Reverify,
    agent_id: AgentId,
    limit: Annotated[int, Parameter(ge=1, le=MAX_AAP, description="Traces (1-40).")] = MAX_AAP,
    offset: Offset = 0,
) -> ReverifyAap:
    return await reverify.reverify_aap(agent_id, limit, offset)


@post(
    "/agents/{agent_id:str}/reverify/aip",
    opt=_WRITE,
    status_code=200,
    summary="Re-gate the newest non-clear checkpoints' concerns (AIP)",
    description=f"Synchronous, at most {MAX_AIP} checkpoints per call; page with offset. The "
    "answer is stored (GET .../reverify/{run_id}); stored checkpoints are not changed.",
)
async def reverify_aip(
    reverify: Reverify,
    agent_id: AgentId,
    limit: Annotated[int, Parameter(ge=1, le=MAX_AIP, description="Checkpoints (1-20).")] = MAX_AIP,
    offset: Offset = 0,
) -> ReverifyAip:
    return await reverify.reverify_aip(agent_id, limit, offset)


@get("/agents/{agent_id:str}/reverify/{run_id:str}", summary="A stored re-verification run")
async def get_reverify_run(reverify: Reverify, agent_id: AgentId, run_id: RunId) -> ReverifyRun:
    return await reverify.get_run(agent_id, run_id)


def reverify_route_handlers() -> list[HTTPRouteHandler]:
    return [reverify_aap, reverify_aip, get_reverify_run]
