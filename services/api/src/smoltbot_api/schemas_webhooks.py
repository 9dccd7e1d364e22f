"""Bodies of ``/v1/webhooks`` (self-hosting.md §2.3 "Webhooks"; deviations in docs/api.md).

Only the answers to the creating POST and to ``rotate-secret`` carry the signing secret.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from smoltbot_api.webhook_url import MAX_URL_LENGTH

__all__ = [
    "CreateWebhook",
    "DeliveryList",
    "DeliveryQueued",
    "DeliveryStatus",
    "SecretRotated",
    "UpdateWebhook",
    "WebhookCreated",
    "WebhookDeleted",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookList",
]

DeliveryStatus = Literal["pending", "delivering", "delivered", "failed", "retrying"]
MAX_EVENT_FILTERS = 32

Url = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=MAX_URL_LENGTH,
        description="https:// URL (http:// only to localhost or a loopback/private IP); no "
        "credentials, no fragment.",
    ),
]
Description = Annotated[str, msgspec.Meta(max_length=500, description="A label for people.")]
EventTypes = Annotated[
    list[str],
    msgspec.Meta(
        max_length=MAX_EVENT_FILTERS,
        description="Event types to receive (see docs/api.md), 'trace.*' or '*'; empty = all.",
    ),
]


class CreateWebhook(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``POST /v1/webhooks``."""

    url: Url
    description: Description = ""
    event_types: EventTypes = msgspec.field(default_factory=list)


class UpdateWebhook(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``PATCH /v1/webhooks/{id}``: every field optional (null = unchanged), at least one given.
    Setting ``is_active`` to true resets the failure counter and the disabled state."""

    url: Url | None = None
    description: Description | None = None
    event_types: EventTypes | None = None
    is_active: bool | None = None


class WebhookEndpoint(msgspec.Struct, kw_only=True):
    """A webhook endpoint as listed: never its signing secret."""

    endpoint_id: str
    url: str
    description: str
    event_types: list[str]
    is_active: bool
    consecutive_failures: int
    disabled_at: datetime | None
    disabled_reason: str | None
    secret_rotated_at: datetime | None
    created_at: datetime
    updated_at: datetime


class WebhookCreated(WebhookEndpoint, kw_only=True):
    """The answer to ``POST /v1/webhooks``: the only time the signing secret is shown."""

    signing_secret: str  # 64 hex characters (32 random bytes): the HMAC-SHA256 key


class WebhookList(msgspec.Struct, kw_only=True):
    """``GET /v1/webhooks``: every endpoint, newest first."""

    webhooks: list[WebhookEndpoint]


class WebhookDeleted(msgspec.Struct, kw_only=True):
    deleted: bool
    endpoint_id: str


class SecretRotated(msgspec.Struct, kw_only=True):
    """The new secret, shown once; the old one stops being used at once (no grace period)."""

    endpoint_id: str
    signing_secret: str
    secret_rotated_at: datetime


class DeliveryQueued(msgspec.Struct, kw_only=True):
    """A delivery row the notifier will send (``test`` and ``redeliver``)."""

    delivery_id: str
    event_id: str
    endpoint_id: str
    event_type: str
    status: DeliveryStatus


class WebhookDelivery(msgspec.Struct, kw_only=True):
    delivery_id: str
    event_id: str
    endpoint_id: str
    event_type: str
    status: DeliveryStatus
    attempt_count: int
    max_attempts: int
    next_attempt_at: datetime
    last_response_status: int | None
    last_error: str | None
    latency_ms: float | None
    redelivery_of: str | None  # the delivery this one repeats
    delivered_at: datetime | None
    created_at: datetime
    updated_at: datetime


class DeliveryList(msgspec.Struct, kw_only=True):
    """``GET /v1/webhooks/{id}/deliveries``: newest first."""

    deliveries: list[WebhookDelivery]
    total: int
    limit: int
    offset: int
