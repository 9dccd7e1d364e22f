"""``/v1/webhooks``: endpoint management, the secret shown once, test and redeliver enqueue
pending rows (the api never calls the URL), the delivery log, scopes and URL hygiene."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import psycopg
import pytest
from smoltbot_api.webhook_url import url_problem
from smoltbot_contracts.webhooks import subscribed

# Must equal conftest.TOKEN (test modules cannot import conftest under this pytest setup).
ADMIN = {"Authorization": "Bearer test-admin-token-0123456789abcdef"}
URL = "https://hooks.example.com/smoltbot"
MISSING = "whe-" + "0" * 32


@pytest.fixture(autouse=True)
def _empty(db: psycopg.Connection[Any]) -> None:
    db.execute("TRUNCATE webhook_endpoints, webhook_deliveries, api_keys")


async def create(client: Any, **body: Any) -> dict[str, Any]:
    response = await client.post("/v1/webhooks", json={"url": URL, **body}, headers=ADMIN)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def expect_error(response: Any, status: int, error_type: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["type"] == error_type, body
    return str(body["error"])


async def test_create_returns_the_secret_once_and_never_lists_it(
    client: Any, db: psycopg.Connection[Any]
) -> None:
    created = await create(
        client, description="ops", event_types=["integrity.violation", "trace.*"]
    )
    secret = created["signing_secret"]
    assert len(secret) == 64
    assert int(secret, 16) >= 0
    assert created["endpoint_id"].startswith("whe-")
    assert created["event_types"] == ["integrity.violation", "trace.*"]
    assert created["is_active"] is True
    assert created["consecutive_failures"] == 0
    # Stored as-is so the notifier can sign with it.
    (stored,) = db.execute(
        "SELECT signing_secret FROM webhook_endpoints WHERE id = %s", [created["endpoint_id"]]
    ).fetchone() or (None,)
    assert stored == secret
    signature = hmac.new(secret.encode(), b"1.{}", hashlib.sha256).hexdigest()
    assert len(signature) == 64

    listed = await client.get("/v1/webhooks", headers=ADMIN)
    assert listed.status_code == 200
    (entry,) = listed.json()["webhooks"]
    assert "signing_secret" not in entry
    assert secret not in listed.text
    one = await client.get(f"/v1/webhooks/{created['endpoint_id']}", headers=ADMIN)
    assert one.status_code == 200
    assert secret not in one.text
    assert one.json() == entry


async def test_update_delete_and_404s(client: Any, db: psycopg.Connection[Any]) -> None:
    created = await create(client)
    ep = created["endpoint_id"]
    db.execute(
        "UPDATE webhook_endpoints SET is_active = false, consecutive_failures = 100,"
        " disabled_at = now(), disabled_reason = '100 consecutive failures' WHERE id = %s",
        [ep],
    )
    changed = await client.patch(
        f"/v1/webhooks/{ep}",
        json={"url": "https://other.example.com/h", "event_types": ["*"], "is_active": True},
        headers=ADMIN,
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert body["url"] == "https://other.example.com/h"
    assert body["event_types"] == ["*"]
    assert body["is_active"] is True
    assert body["consecutive_failures"] == 0
    assert body["disabled_at"] is None
    assert body["disabled_reason"] is None
    off = await client.patch(f"/v1/webhooks/{ep}", json={"is_active": False}, headers=ADMIN)
    assert off.json()["is_active"] is False
    expect_error(
        await client.patch(f"/v1/webhooks/{ep}", json={}, headers=ADMIN), 422, "validation_error"
    )

    for method, path in [
        ("GET", f"/v1/webhooks/{MISSING}"),
        ("PATCH", f"/v1/webhooks/{MISSING}"),
        ("DELETE", f"/v1/webhooks/{MISSING}"),
        ("POST", f"/v1/webhooks/{MISSING}/rotate-secret"),
        ("POST", f"/v1/webhooks/{MISSING}/test"),
        ("GET", f"/v1/webhooks/{MISSING}/deliveries"),
        ("POST", f"/v1/webhooks/{MISSING}/deliveries/whd-{'0' * 32}/redeliver"),
    ]:
        kwargs: dict[str, Any] = {"json": {"is_active": True}} if method == "PATCH" else {}
        response = await client.request(method, path, headers=ADMIN, **kwargs)
        expect_error(response, 404, "not_found")

    deleted = await client.delete(f"/v1/webhooks/{ep}", headers=ADMIN)
    assert deleted.status_code == 200
    assert deleted.json() == {"deleted": True, "endpoint_id": ep}
    assert (await client.get("/v1/webhooks", headers=ADMIN)).json() == {"webhooks": []}


@pytest.mark.parametrize(
    ("body", "status", "error_type"),
    [
        ({"url": "ftp://example.com/x"}, 422, "validation_error"),
        ({"url": "https://user:pw@example.com/x"}, 422, "validation_error"),
        ({"url": "http://hooks.example.com/x"}, 422, "validation_error"),
        ({"url": "https://169.254.169.254/latest"}, 422, "validation_error"),
        ({"url": "https://example.com/x#frag"}, 422, "validation_error"),
        ({"url": "not a url"}, 422, "validation_error"),
        ({"url": URL, "event_types": ["no.such.event"]}, 422, "validation_error"),
        ({"url": URL, "extra": 1}, 400, "invalid_request_error"),
        ({}, 400, "invalid_request_error"),
        ({"url": 5}, 400, "invalid_request_error"),
    ],
)
async def test_create_refuses_bad_bodies(
    client: Any, body: dict[str, Any], status: int, error_type: str
) -> None:
    response = await client.post("/v1/webhooks", json=body, headers=ADMIN)
    message = expect_error(response, status, error_type)
    if status == 422:
        assert message.startswith(("url:", "event_types:")), message


def test_url_rules() -> None:
    assert url_problem("https://hooks.example.com:8443/a?b=c") is None
    assert url_problem("http://localhost:9000/hook") is None
    assert url_problem("http://127.0.0.1/hook") is None
    assert url_problem("http://10.1.2.3/hook") is None
    assert url_problem("http://[::1]:8080/hook") is None
    assert url_problem("https://[fe80::1]/x") is not None
    assert url_problem("https://0.0.0.0/x") is not None
    assert url_problem("https://example.com:99999/x") is not None
    assert url_problem("javascript:alert(1)") is not None
    assert url_problem("https:///nohost") is not None
    assert url_problem("https://example.com/a b") is not None


def test_event_filters() -> None:
    assert subscribed([], "integrity.violation")
    assert subscribed(["trace.*"], "trace.verified")
    assert not subscribed(["trace.*"], "integrity.violation")
    assert subscribed(["integrity.violation"], "webhook.test")


async def test_at_most_five_endpoints(client: Any) -> None:
    for i in range(5):
        await create(client, description=f"n{i}")
    response = await client.post("/v1/webhooks", json={"url": URL}, headers=ADMIN)
    expect_error(response, 409, "conflict")


async def test_rotate_secret_returns_a_new_secret_once(
    client: Any, db: psycopg.Connection[Any]
) -> None:
    created = await create(client)
    ep = created["endpoint_id"]
    rotated = await client.post(f"/v1/webhooks/{ep}/rotate-secret", headers=ADMIN)
    assert rotated.status_code == 200, rotated.text
    body = rotated.json()
    assert body["endpoint_id"] == ep
    assert body["secret_rotated_at"]
    assert len(body["signing_secret"]) == 64
    assert body["signing_secret"] != created["signing_secret"]
    (stored,) = db.execute(
        "SELECT signing_secret FROM webhook_endpoints WHERE id = %s", [ep]
    ).fetchone() or (None,)
    assert stored == body["signing_secret"]
    shown = await client.get(f"/v1/webhooks/{ep}", headers=ADMIN)
    assert body["signing_secret"] not in shown.text
    assert shown.json()["secret_rotated_at"]


async def test_test_and_redeliver_enqueue_pending_rows(
    client: Any, db: psycopg.Connection[Any]
) -> None:
    ep = (await create(client, event_types=["integrity.violation"]))["endpoint_id"]
    queued = await client.post(f"/v1/webhooks/{ep}/test", headers=ADMIN)
    assert queued.status_code == 202, queued.text
    first = queued.json()
    assert first["status"] == "pending"
    assert first["event_type"] == "webhook.test"
    assert first["delivery_id"].startswith("whd-")
    assert first["event_id"].startswith("evt-")
    (payload,) = db.execute(
        "SELECT payload FROM webhook_deliveries WHERE id = %s", [first["delivery_id"]]
    ).fetchone() or (None,)
    assert payload["id"] == first["event_id"]
    assert payload["type"] == "webhook.test"
    assert payload["data"]["endpoint_id"] == ep

    again = await client.post(
        f"/v1/webhooks/{ep}/deliveries/{first['delivery_id']}/redeliver", headers=ADMIN
    )
    assert again.status_code == 202, again.text
    second = again.json()
    assert second["event_id"] == first["event_id"]
    assert second["delivery_id"] != first["delivery_id"]
    assert second["status"] == "pending"

    page = await client.get(f"/v1/webhooks/{ep}/deliveries", headers=ADMIN)
    assert page.status_code == 200
    log = page.json()
    assert log["total"] == 2
    assert log["limit"] == 50
    assert log["offset"] == 0
    assert {d["delivery_id"] for d in log["deliveries"]} == {
        first["delivery_id"],
        second["delivery_id"],
    }
    by_id = {d["delivery_id"]: d for d in log["deliveries"]}
    assert by_id[second["delivery_id"]]["redelivery_of"] == first["delivery_id"]
    assert by_id[first["delivery_id"]]["attempt_count"] == 0
    one = await client.get(f"/v1/webhooks/{ep}/deliveries?limit=1&offset=1", headers=ADMIN)
    assert len(one.json()["deliveries"]) == 1
    assert one.json()["total"] == 2
    past = await client.get(f"/v1/webhooks/{ep}/deliveries?offset=10", headers=ADMIN)
    assert past.json()["deliveries"] == []
    assert past.json()["total"] == 2
    bad = await client.get(f"/v1/webhooks/{ep}/deliveries?limit=101", headers=ADMIN)
    expect_error(bad, 400, "invalid_request_error")

    # Another endpoint's delivery is not this endpoint's.
    other = (await create(client))["endpoint_id"]
    response = await client.post(
        f"/v1/webhooks/{other}/deliveries/{first['delivery_id']}/redeliver", headers=ADMIN
    )
    expect_error(response, 404, "not_found")

    # A disabled endpoint gets nothing new enqueued.
    await client.patch(f"/v1/webhooks/{ep}", json={"is_active": False}, headers=ADMIN)
    expect_error(await client.post(f"/v1/webhooks/{ep}/test", headers=ADMIN), 409, "conflict")

    # Deleting the endpoint deletes its history.
    await client.delete(f"/v1/webhooks/{ep}", headers=ADMIN)
    (count,) = db.execute("SELECT count(*) FROM webhook_deliveries").fetchone() or (None,)
    assert count == 0


@pytest.mark.parametrize("key_scope", ["read", "write"])
async def test_read_and_write_keys_get_403_on_every_webhook_route(
    client: Any, key_scope: str
) -> None:
    ep = (await create(client))["endpoint_id"]
    made = await client.post("/v1/api-keys", json={"scope": key_scope}, headers=ADMIN)
    key = {"Authorization": f"Bearer {made.json()['key']}"}
    routes = [
        ("GET", "/v1/webhooks", None),
        ("POST", "/v1/webhooks", {"url": URL}),
        ("GET", f"/v1/webhooks/{ep}", None),
        ("PATCH", f"/v1/webhooks/{ep}", {"is_active": False}),
        ("DELETE", f"/v1/webhooks/{ep}", None),
        ("POST", f"/v1/webhooks/{ep}/rotate-secret", None),
        ("POST", f"/v1/webhooks/{ep}/test", None),
        ("GET", f"/v1/webhooks/{ep}/deliveries", None),
        ("POST", f"/v1/webhooks/{ep}/deliveries/whd-{'0' * 32}/redeliver", None),
    ]
    for method, path, body in routes:
        kwargs: dict[str, Any] = {} if body is None else {"json": body}
        response = await client.request(method, path, headers=key, **kwargs)
        expect_error(response, 403, "permission_error")
    admin = await client.post("/v1/api-keys", json={"scope": "admin"}, headers=ADMIN)
    listed = await client.get(
        "/v1/webhooks", headers={"Authorization": f"Bearer {admin.json()['key']}"}
    )
    assert listed.status_code == 200
    assert len(listed.json()["webhooks"]) == 1
