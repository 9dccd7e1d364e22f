"""``/v1/webhooks`` (scope admin): endpoint management and the delivery log.

Delivery is the notifier's: ``test`` and ``redeliver`` enqueue a ``pending`` delivery row and
answer 202; the api itself never calls a webhook URL.
"""

from __future__ import annotations

from typing import Annotated

from litestar import delete, get, patch, post
from litestar.di import NamedDependency
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, Parameter, PathParameter

from smoltbot_api.auth import scope
from smoltbot_api.repo_webhooks import MAX_ENDPOINTS, WebhookRepository
from smoltbot_api.schemas_webhooks import (
    CreateWebhook,
    DeliveryList,
    DeliveryQueued,
    SecretRotated,
    UpdateWebhook,
    WebhookCreated,
    WebhookDeleted,
    WebhookEndpoint,
    WebhookList,
)

__all__ = ["webhook_route_handlers"]

EndpointId = Annotated[str, PathParameter(description="Webhook endpoint id, e.g. whe-<32 hex>.")]
DeliveryId = Annotated[str, PathParameter(description="Delivery id, e.g. whd-<32 hex>.")]
Limit = Annotated[int, Parameter(ge=1, le=100, description="Page size (1-100).")]
Offset = Annotated[int, Parameter(ge=0, description="Rows to skip (>= 0).")]
Webhooks = NamedDependency[WebhookRepository]
_ADMIN = scope("admin")
_422 = ResponseSpec(None, description="A url or event type refused, or nothing to change.")
_409_LIMIT = ResponseSpec(None, description=f"Already {MAX_ENDPOINTS} endpoints.")
_409_DISABLED = ResponseSpec(None, description="The endpoint is disabled.")


@get("/webhooks", opt=_ADMIN, summary="List webhook endpoints (never their secrets)")
async def list_webhooks(webhooks: Webhooks) -> WebhookList:
    return await webhooks.list_endpoints()


@post(
    "/webhooks",
    opt=_ADMIN,
    status_code=201,
    responses={409: _409_LIMIT, 422: _422},
    summary="Create a webhook endpoint",
    description="The answer is the only place the signing secret appears: store it now. "
    f"At most {MAX_ENDPOINTS} endpoints (409 beyond).",
)
async def create_webhook(webhooks: Webhooks, data: JSONBody[CreateWebhook]) -> WebhookCreated:
    return await webhooks.create(data.url, data.description, data.event_types)


@get("/webhooks/{endpoint_id:str}", opt=_ADMIN, summary="Get one webhook endpoint")
async def get_webhook(webhooks: Webhooks, endpoint_id: EndpointId) -> WebhookEndpoint:
    return await webhooks.get(endpoint_id)


@patch(
    "/webhooks/{endpoint_id:str}",
    opt=_ADMIN,
    responses={422: _422},
    summary="Change a webhook endpoint",
    description="is_active=true also resets the failure counter and the disabled state.",
)
async def update_webhook(
    webhooks: Webhooks, endpoint_id: EndpointId, data: JSONBody[UpdateWebhook]
) -> WebhookEndpoint:
    return await webhooks.update(endpoint_id, data)


@delete(
    "/webhooks/{endpoint_id:str}",
    opt=_ADMIN,
    status_code=200,
    summary="Delete a webhook endpoint and its delivery history",
)
async def delete_webhook(webhooks: Webhooks, endpoint_id: EndpointId) -> WebhookDeleted:
    return await webhooks.delete(endpoint_id)


@post(
    "/webhooks/{endpoint_id:str}/rotate-secret",
    opt=_ADMIN,
    status_code=200,
    summary="Replace the signing secret",
    description="The new secret is shown once; the old one is not used for any later attempt.",
)
async def rotate_webhook_secret(webhooks: Webhooks, endpoint_id: EndpointId) -> SecretRotated:
    return await webhooks.rotate_secret(endpoint_id)


@post(
    "/webhooks/{endpoint_id:str}/test",
    opt=_ADMIN,
    status_code=202,
    responses={409: _409_DISABLED},
    summary="Enqueue a webhook.test event",
    description="Records a pending delivery the notifier sends; see its outcome in the "
    "deliveries. 409 when the endpoint is disabled.",
)
async def test_webhook(webhooks: Webhooks, endpoint_id: EndpointId) -> DeliveryQueued:
    return await webhooks.enqueue_test(endpoint_id)


@get(
    "/webhooks/{endpoint_id:str}/deliveries",
    opt=_ADMIN,
    summary="An endpoint's deliveries, newest first",
)
async def list_webhook_deliveries(
    webhooks: Webhooks, endpoint_id: EndpointId, limit: Limit = 50, offset: Offset = 0
) -> DeliveryList:
    return await webhooks.deliveries(endpoint_id, limit, offset)


@post(
    "/webhooks/{endpoint_id:str}/deliveries/{delivery_id:str}/redeliver",
    opt=_ADMIN,
    status_code=202,
    responses={409: _409_DISABLED},
    summary="Enqueue a delivery again",
    description="A new pending delivery with the same event id and payload. 409 when the "
    "endpoint is disabled.",
)
async def redeliver_webhook(
    webhooks: Webhooks, endpoint_id: EndpointId, delivery_id: DeliveryId
) -> DeliveryQueued:
    return await webhooks.redeliver(endpoint_id, delivery_id)


def webhook_route_handlers() -> list[HTTPRouteHandler]:
    return [
        list_webhooks,
        create_webhook,
        get_webhook,
        update_webhook,
        delete_webhook,
        rotate_webhook_secret,
        test_webhook,
        list_webhook_deliveries,
        redeliver_webhook,
    ]
