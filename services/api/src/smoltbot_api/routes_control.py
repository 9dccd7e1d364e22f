"""Agent enforcement settings and containment (self-hosting.md §2.3; docs/api.md, "Agents and
containment"). Mutations need scope ``write`` (``auth.scope``); reads need ``read``. The caller
(``auth.principal_of``: ``admin-token`` or the API key's id) is the containment log's actor."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, get, post, put
from litestar.di import NamedDependency
from litestar.handlers import HTTPRouteHandler
from litestar.params import Body, JSONBody, Parameter, PathParameter

from smoltbot_api.auth import principal_of, scope
from smoltbot_api.control import ACTIONS, OPERATOR, AgentControl
from smoltbot_api.schemas_control import (
    ContainmentChange,
    ContainmentRequest,
    ContainmentState,
    EnforcementSettings,
    EnforcementUpdate,
)

__all__ = ["control_route_handlers"]

WRITE_SCOPE = scope("write")
READ_SCOPE = scope("read")

AgentId = Annotated[str, PathParameter(description="Agent id, e.g. smolt-1a2b3c4d.")]
Limit = Annotated[int, Parameter(ge=1, le=1000, description="Page size (1-1000).")]
Offset = Annotated[int, Parameter(ge=0, description="Rows to skip (>= 0).")]
Control = NamedDependency[AgentControl]
OptionalReason = Annotated[ContainmentRequest | None, Body(description="{reason} (optional)")]


@get(
    "/agents/{agent_id:str}/enforcement",
    summary="An agent's enforcement settings",
    opt=READ_SCOPE,
)
async def get_enforcement(control: Control, agent_id: AgentId) -> EnforcementSettings:
    return await control.enforcement(agent_id)


@put(
    "/agents/{agent_id:str}/enforcement",
    summary="Change an agent's enforcement settings (written through to the gateways)",
    opt=WRITE_SCOPE,
)
async def put_enforcement(
    control: Control, agent_id: AgentId, data: JSONBody[EnforcementUpdate]
) -> EnforcementSettings:
    return await control.update_enforcement(agent_id, data)


@get(
    "/agents/{agent_id:str}/containment",
    summary="An agent's containment status and log, newest first",
    opt=READ_SCOPE,
)
async def get_containment(
    control: Control, agent_id: AgentId, limit: Limit = 50, offset: Offset = 0
) -> ContainmentState:
    return await control.containment(agent_id, limit, offset)


def _action_handler(name: str, summary: str) -> HTTPRouteHandler:
    action = ACTIONS[name]

    async def handler(
        request: Request[Any, Any, Any],
        control: Control,
        agent_id: AgentId,
        data: OptionalReason = None,
    ) -> ContainmentChange:
        principal = principal_of(request)
        actor = principal.id if principal is not None else OPERATOR
        return await control.contain(agent_id, action, data.reason if data else None, actor=actor)

    handler.__name__ = f"{name}_agent"
    handler.__qualname__ = handler.__name__
    return post(
        f"/agents/{{agent_id:str}}/{name}",
        summary=summary,
        status_code=200,
        opt=WRITE_SCOPE,
        operation_id=f"{name}Agent",
    )(handler)


def control_route_handlers() -> list[HTTPRouteHandler]:
    """Every handler of this module (mounted under ``/v1`` by ``routes.v1_route_handlers``)."""
    return [
        get_enforcement,
        put_enforcement,
        get_containment,
        _action_handler("pause", "Pause an agent: its next gateway call gets 403"),
        _action_handler("resume", "Resume a paused agent"),
        _action_handler("kill", "Kill an agent (only reactivate lifts it)"),
        _action_handler("reactivate", "Reactivate a killed agent"),
    ]
