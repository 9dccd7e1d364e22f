"""Cards, the org card template and conscience values (docs/api.md, "Cards and conscience
values"; self-hosting.md §2.2-2.3 with the org routes flattened: one implicit org).

Bodies are read and checked here (``card_shape``), so a wrong shape is a 422 naming the field
and a body that is not JSON a 400; mutations need scope ``write``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, get, post, put
from litestar.di import NamedDependency
from litestar.handlers import HTTPRouteHandler
from litestar.params import Parameter, PathParameter

from smoltbot_api.auth import scope
from smoltbot_api.card_shape import check_card, check_conscience_values, check_org_template
from smoltbot_api.errors import InvalidRequestError, ValidationError
from smoltbot_api.repo_cards import CardStore
from smoltbot_api.schemas_cards import (
    AgentConscienceValues,
    CardHistory,
    CardPublished,
    CardView,
    ConscienceValuesReset,
    OrgCardExempt,
    OrgCardTemplate,
    OrgConscienceValues,
)

__all__ = ["card_route_handlers"]

MAX_BODY_BYTES = 1_000_000

AgentId = Annotated[str, PathParameter(description="Agent id, e.g. smolt-1a2b3c4d.")]
Limit = Annotated[int, Parameter(ge=1, le=1000, description="Page size (1-1000).")]
Offset = Annotated[int, Parameter(ge=0, description="Rows to skip (>= 0).")]
Cards = NamedDependency[CardStore]
AnyRequest = Request[Any, Any, Any]


async def _body(request: AnyRequest) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise InvalidRequestError(f"request body larger than {MAX_BODY_BYTES} bytes")
    try:
        body = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        raise InvalidRequestError("request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ValidationError("body: must be a JSON object")
    return body


def _flag(body: dict[str, Any], field: str) -> bool | None:
    value = body.get(field)
    if value is not None and not isinstance(value, bool):
        raise ValidationError(f"{field}: must be true or false")
    return value


def _issued_at(card: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(str(card["issued_at"]).replace("Z", "+00:00"))


@get("/agents/{agent_id:str}/card", summary="The active card, merged view and raw layers")
async def get_card(cards: Cards, agent_id: AgentId) -> CardView:
    return await cards.get_card(agent_id)


@post(
    "/agents/{agent_id:str}/card",
    summary="Publish a new card version (body: {card, conscience_values?})",
    opt=scope("write"),
    status_code=201,
)
async def publish_card(cards: Cards, agent_id: AgentId, request: AnyRequest) -> CardPublished:
    body = await _body(request)
    # The reference's PATCH body names the card card_json; both names are accepted.
    raw_card = body.get("card", body.get("card_json"))
    if raw_card is None:
        raise ValidationError("card: is required (the AAP card as a JSON object)")
    card = check_card(raw_card, agent_id)
    values = None
    if body.get("conscience_values") is not None:
        values = check_conscience_values(body["conscience_values"])
    return await cards.publish(agent_id, card, _issued_at(card), values)


@get("/agents/{agent_id:str}/card/history", summary="An agent's card versions, newest first")
async def card_history(
    cards: Cards, agent_id: AgentId, limit: Limit = 20, offset: Offset = 0
) -> CardHistory:
    return await cards.history(agent_id, limit, offset)


@put(
    "/agents/{agent_id:str}/org-card-exempt",
    summary="Exempt an agent from the org card template (body: {exempt})",
    opt=scope("write"),
)
async def put_exempt(cards: Cards, agent_id: AgentId, request: AnyRequest) -> OrgCardExempt:
    body = await _body(request)
    exempt = _flag(body, "exempt")
    if exempt is None:
        raise ValidationError("exempt: is required (true or false)")
    return await cards.set_exempt(agent_id, exempt)


@get("/agents/{agent_id:str}/conscience-values", summary="An agent's own conscience values")
async def get_agent_values(cards: Cards, agent_id: AgentId) -> AgentConscienceValues:
    return await cards.get_agent_values(agent_id)


@put(
    "/agents/{agent_id:str}/conscience-values",
    summary="Replace an agent's own conscience values (body: {conscience_values})",
    opt=scope("write"),
)
async def put_agent_values(
    cards: Cards, agent_id: AgentId, request: AnyRequest
) -> AgentConscienceValues:
    body = await _body(request)
    if "conscience_values" not in body:
        raise ValidationError("conscience_values: is required (a list of {type, content})")
    return await cards.put_agent_values(
        agent_id, check_conscience_values(body["conscience_values"])
    )


@post(
    "/agents/{agent_id:str}/conscience-values/reset",
    summary="Drop an agent's own conscience values (the defaults and org layers apply)",
    opt=scope("write"),
    status_code=200,
)
async def reset_agent_values(cards: Cards, agent_id: AgentId) -> ConscienceValuesReset:
    return await cards.reset_agent_values(agent_id)


@get("/org/card-template", summary="The org card template, its flag and the exempt agents")
async def get_template(cards: Cards) -> OrgCardTemplate:
    return await cards.get_template()


@put(
    "/org/card-template",
    summary="Set the org card template and/or its enabled flag (body: {enabled?, template?})",
    opt=scope("write"),
)
async def put_template(cards: Cards, request: AnyRequest) -> OrgCardTemplate:
    body = await _body(request)
    enabled = _flag(body, "enabled")
    has_template = "template" in body
    template = None
    if has_template and body["template"] is not None:
        template = check_org_template(body["template"])
    if enabled is None and not has_template:
        raise ValidationError("body: give enabled and/or template")
    return await cards.put_template(enabled, template, set_template=has_template)


@get("/org/conscience-values", summary="The org's conscience values, their flag and mode")
async def get_org_values(cards: Cards) -> OrgConscienceValues:
    return await cards.get_org_values()


@put(
    "/org/conscience-values",
    summary="Set the org's conscience values, flag and/or mode (body: {enabled?, mode?, values?})",
    opt=scope("write"),
)
async def put_org_values(cards: Cards, request: AnyRequest) -> OrgConscienceValues:
    body = await _body(request)
    enabled = _flag(body, "enabled")
    mode = body.get("mode")
    if mode is not None and mode not in ("augment", "replace"):
        raise ValidationError("mode: must be one of augment, replace")
    values = None
    if body.get("values") is not None:
        values = check_conscience_values(body["values"], "values")
    if enabled is None and mode is None and values is None:
        raise ValidationError("body: give enabled, mode and/or values")
    return await cards.put_org_values(enabled, mode, values)


def card_route_handlers() -> list[HTTPRouteHandler]:
    """The card and conscience-value handlers, mounted under ``/v1`` by ``routes.py``."""
    return [
        get_card,
        publish_card,
        card_history,
        put_exempt,
        get_agent_values,
        put_agent_values,
        reset_agent_values,
        get_template,
        put_template,
        get_org_values,
        put_org_values,
    ]
