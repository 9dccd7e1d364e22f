"""``/v1/webhooks`` storage: endpoints and the delivery rows the notifier sends (migration 0009).

The api never calls a webhook URL: ``test`` and ``redeliver`` only insert a ``pending`` row.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from smoltbot_contracts.webhooks import TEST_EVENT, is_valid_filter

from smoltbot_api.db import Database
from smoltbot_api.errors import ConflictError, NotFoundError, ValidationError
from smoltbot_api.schemas_webhooks import (
    DeliveryList,
    DeliveryQueued,
    SecretRotated,
    UpdateWebhook,
    WebhookCreated,
    WebhookDeleted,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookList,
)
from smoltbot_api.webhook_url import url_problem

__all__ = ["MAX_ENDPOINTS", "WebhookRepository"]

#: At most this many endpoints (the reference's per-org limit; one org here).
MAX_ENDPOINTS = 5
_LOCK = 0x5EB400C  # advisory lock serialising creates, so the limit holds under concurrency

_ENDPOINT_COLUMNS = (
    "id, url, description, event_types, is_active, consecutive_failures, disabled_at,"
    " disabled_reason, secret_rotated_at, created_at, updated_at"
)
_DELIVERY_COLUMNS = (
    "id, endpoint_id, event_id, event_type, status, attempt_count, max_attempts,"
    " next_attempt_at, last_response_status, last_error, latency_ms, redelivery_of,"
    " delivered_at, created_at, updated_at"
)


def _new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def _secret() -> str:
    return secrets.token_hex(32)


def _checked_url(url: str) -> str:
    problem = url_problem(url)
    if problem is not None:
        raise ValidationError(f"url: {problem}")
    return url


def _checked_events(event_types: Sequence[str]) -> list[str]:
    unknown = [e for e in event_types if not is_valid_filter(e)]
    if unknown:
        raise ValidationError(
            f"event_types: unknown event type(s) {', '.join(map(repr, unknown[:5]))}"
            " (see docs/api.md, Webhooks)"
        )
    return list(dict.fromkeys(event_types))  # keep order, drop repeats


def _endpoint(row: dict[str, Any]) -> WebhookEndpoint:
    return WebhookEndpoint(
        endpoint_id=row["id"],
        url=row["url"],
        description=row["description"],
        event_types=list(row["event_types"]),
        is_active=row["is_active"],
        consecutive_failures=row["consecutive_failures"],
        disabled_at=row["disabled_at"],
        disabled_reason=row["disabled_reason"],
        secret_rotated_at=row["secret_rotated_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _delivery(row: dict[str, Any]) -> WebhookDelivery:
    return WebhookDelivery(
        delivery_id=row["id"],
        event_id=row["event_id"],
        endpoint_id=row["endpoint_id"],
        event_type=row["event_type"],
        status=row["status"],
        attempt_count=row["attempt_count"],
        max_attempts=row["max_attempts"],
        next_attempt_at=row["next_attempt_at"],
        last_response_status=row["last_response_status"],
        last_error=row["last_error"],
        latency_ms=row["latency_ms"],
        redelivery_of=row["redelivery_of"],
        delivered_at=row["delivered_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _queued(row: dict[str, Any]) -> DeliveryQueued:
    return DeliveryQueued(
        delivery_id=row["id"],
        event_id=row["event_id"],
        endpoint_id=row["endpoint_id"],
        event_type=row["event_type"],
        status=row["status"],
    )


class WebhookRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def _fetch_one(self, query: str, params: Sequence[Any]) -> dict[str, Any] | None:
        async with self._db.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(query, params)
            return await cur.fetchone()

    async def list_endpoints(self) -> WebhookList:
        async with self._db.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                f"SELECT {_ENDPOINT_COLUMNS} FROM webhook_endpoints"  # noqa: S608 - constants
                " ORDER BY created_at DESC, id DESC"
            )
            rows = await cur.fetchall()
        return WebhookList(webhooks=[_endpoint(r) for r in rows])

    async def get(self, endpoint_id: str) -> WebhookEndpoint:
        row = await self._fetch_one(
            f"SELECT {_ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = %s",  # noqa: S608
            [endpoint_id],
        )
        if row is None:
            raise NotFoundError(f"webhook endpoint {endpoint_id!r} not found")
        return _endpoint(row)

    async def create(self, url: str, description: str, event_types: list[str]) -> WebhookCreated:
        url = _checked_url(url)
        events = _checked_events(event_types)
        secret = _secret()
        async with (
            self._db.connection() as conn,
            conn.transaction(),
            conn.cursor(row_factory=dict_row) as cur,
        ):
            await cur.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK])
            await cur.execute("SELECT count(*) AS n FROM webhook_endpoints")
            counted = await cur.fetchone()
            if counted is not None and counted["n"] >= MAX_ENDPOINTS:
                raise ConflictError(f"at most {MAX_ENDPOINTS} webhook endpoints; delete one first")
            await cur.execute(
                "INSERT INTO webhook_endpoints"  # noqa: S608 - constant column list
                " (id, url, description, signing_secret, event_types)"
                f" VALUES (%s, %s, %s, %s, %s) RETURNING {_ENDPOINT_COLUMNS}",
                [_new_id("whe"), url, description, secret, events],
            )
            row = await cur.fetchone()
        assert row is not None
        shown = _endpoint(row)
        return WebhookCreated(**msgspec.structs.asdict(shown), signing_secret=secret)

    async def update(self, endpoint_id: str, change: UpdateWebhook) -> WebhookEndpoint:
        sets: list[str] = []
        params: list[Any] = []
        if change.url is not None:
            sets.append("url = %s")
            params.append(_checked_url(change.url))
        if change.description is not None:
            sets.append("description = %s")
            params.append(change.description)
        if change.event_types is not None:
            sets.append("event_types = %s")
            params.append(_checked_events(change.event_types))
        if change.is_active is True:
            sets += [
                "is_active = true",
                "consecutive_failures = 0",
                "disabled_at = NULL",
                "disabled_reason = NULL",
            ]
        elif change.is_active is False:
            sets.append("is_active = false")
        if not sets:
            raise ValidationError("body: give url, description, event_types and/or is_active")
        row = await self._fetch_one(
            f"UPDATE webhook_endpoints SET {', '.join(sets)}, updated_at = now()"  # noqa: S608
            f" WHERE id = %s RETURNING {_ENDPOINT_COLUMNS}",
            [*params, endpoint_id],
        )
        if row is None:
            raise NotFoundError(f"webhook endpoint {endpoint_id!r} not found")
        return _endpoint(row)

    async def delete(self, endpoint_id: str) -> WebhookDeleted:
        row = await self._fetch_one(
            "DELETE FROM webhook_endpoints WHERE id = %s RETURNING id", [endpoint_id]
        )
        if row is None:
            raise NotFoundError(f"webhook endpoint {endpoint_id!r} not found")
        return WebhookDeleted(deleted=True, endpoint_id=endpoint_id)

    async def rotate_secret(self, endpoint_id: str) -> SecretRotated:
        secret = _secret()
        row = await self._fetch_one(
            "UPDATE webhook_endpoints SET signing_secret = %s, secret_rotated_at = now(),"
            " updated_at = now() WHERE id = %s RETURNING secret_rotated_at",
            [secret, endpoint_id],
        )
        if row is None:
            raise NotFoundError(f"webhook endpoint {endpoint_id!r} not found")
        return SecretRotated(
            endpoint_id=endpoint_id,
            signing_secret=secret,
            secret_rotated_at=row["secret_rotated_at"],
        )

    async def _active(self, endpoint_id: str) -> None:
        endpoint = await self.get(endpoint_id)
        if not endpoint.is_active:
            raise ConflictError(
                f"webhook endpoint {endpoint_id!r} is disabled; enable it first"
                " (PATCH is_active=true)"
            )

    async def enqueue_test(self, endpoint_id: str) -> DeliveryQueued:
        await self._active(endpoint_id)
        event_id = _new_id("evt")
        payload = {
            "id": event_id,
            "type": TEST_EVENT,
            "created_at": datetime.now(UTC).isoformat(),
            "data": {"endpoint_id": endpoint_id, "message": "smoltbot webhook test event"},
        }
        row = await self._fetch_one(
            "INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_type, payload)"
            " SELECT %s, id, %s, %s, %s FROM webhook_endpoints WHERE id = %s"
            " RETURNING id, endpoint_id, event_id, event_type, status",
            [_new_id("whd"), event_id, TEST_EVENT, Jsonb(payload), endpoint_id],
        )
        if row is None:  # deleted in between
            raise NotFoundError(f"webhook endpoint {endpoint_id!r} not found")
        return _queued(row)

    async def redeliver(self, endpoint_id: str, delivery_id: str) -> DeliveryQueued:
        await self._active(endpoint_id)
        row = await self._fetch_one(
            "INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_type, payload,"
            " max_attempts, redelivery_of)"
            " SELECT %s, endpoint_id, event_id, event_type, payload, max_attempts, id"
            " FROM webhook_deliveries WHERE id = %s AND endpoint_id = %s"
            " RETURNING id, endpoint_id, event_id, event_type, status",
            [_new_id("whd"), delivery_id, endpoint_id],
        )
        if row is None:
            raise NotFoundError(
                f"delivery {delivery_id!r} of webhook endpoint {endpoint_id!r} not found"
            )
        return _queued(row)

    async def deliveries(self, endpoint_id: str, limit: int, offset: int) -> DeliveryList:
        await self.get(endpoint_id)  # 404 for an unknown endpoint, not an empty page
        async with self._db.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                f"SELECT {_DELIVERY_COLUMNS}, count(*) OVER () AS total"  # noqa: S608
                " FROM webhook_deliveries WHERE endpoint_id = %s"
                " ORDER BY created_at DESC, id DESC LIMIT %s OFFSET %s",
                [endpoint_id, limit, offset],
            )
            rows = await cur.fetchall()
            total = rows[0]["total"] if rows else None
            if total is None:
                await cur.execute(
                    "SELECT count(*) AS total FROM webhook_deliveries WHERE endpoint_id = %s",
                    [endpoint_id],
                )
                counted = await cur.fetchone()
                total = 0 if counted is None else counted["total"]
        return DeliveryList(
            deliveries=[_delivery(r) for r in rows], total=total, limit=limit, offset=offset
        )
