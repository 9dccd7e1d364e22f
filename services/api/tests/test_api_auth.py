"""API keys, scopes and rate limits on /v1 (auth.py, ratelimit.py, routes_api_keys.py) against a
real PostgreSQL and the shared Redis under a private prefix (or no Redis at all)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import psycopg
import pytest
from litestar.testing import AsyncTestClient
from prometheus_client import REGISTRY
from smoltbot_api import ApiSettings, create_app
from smoltbot_api.auth import required_scope, scope
from smoltbot_db.api_keys import scope_allows
from smoltbot_testing.env import REDIS_URL
from smoltbot_testing.faults import FaultProxy
from smoltbot_testing.net import free_port

# Must equal conftest.TOKEN (test modules cannot import conftest under this pytest setup).
TOKEN = "test-admin-token-0123456789abcdef"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}

Client = AsyncTestClient[Any]
MakeClient = Callable[..., Any]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def metric(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


@pytest.fixture
def clean_keys(db: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    db.execute("TRUNCATE api_keys")
    return db


@pytest.fixture
def make_client(database_url: str, clean_keys: psycopg.Connection[Any], prefix: str) -> MakeClient:
    """``async with make_client(**settings) as client``: an app on the test database, its rate
    limits under this test's Redis prefix."""

    @asynccontextmanager
    async def make(**overrides: Any) -> AsyncIterator[Client]:
        values: dict[str, Any] = {
            "database_url": database_url,
            "admin_token": TOKEN,
            "redis_url": REDIS_URL,
            "stream_prefix": prefix,
            **overrides,
        }
        app = create_app(ApiSettings(**values))
        async with AsyncTestClient(app=app) as client:
            await _wait_started(client)
            yield client

    return make


async def _wait_started(client: Client, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while (await client.get("/health/startup")).status_code != 200:
        assert time.monotonic() < deadline, "api did not start"
        await asyncio.sleep(0.05)


async def create_key(client: Client, scope: str, name: str = "test") -> dict[str, Any]:
    response = await client.post("/v1/api-keys", json={"name": name, "scope": scope}, headers=ADMIN)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def assert_error(response: Any, status: int, error_type: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "type"}
    assert body["type"] == error_type


# ---------------------------------------------------------------------------------------------
# Tokens and keys


async def test_admin_token_manages_keys(make_client: MakeClient) -> None:
    async with make_client() as client:
        created = await create_key(client, "read", "dashboards")
        assert created["key"].startswith("sk-smolt-")
        assert len(created["key"]) >= len("sk-smolt-") + 43  # 32 random bytes
        assert created["key"].startswith(created["key_prefix"])
        assert created["id"].startswith("ak-")
        assert (created["scope"], created["name"]) == ("read", "dashboards")
        assert created["last_used_at"] is None
        assert created["revoked_at"] is None

        listed = (await client.get("/v1/api-keys", headers=ADMIN)).json()
        assert [k["id"] for k in listed["keys"]] == [created["id"]]
        assert "key" not in listed["keys"][0]
        assert created["key"] not in str(listed)
        assert all("hash" not in field for field in listed["keys"][0])


async def test_key_defaults_and_bad_bodies(make_client: MakeClient) -> None:
    async with make_client() as client:
        default = await client.post("/v1/api-keys", json={}, headers=ADMIN)
        assert default.status_code == 201
        assert (default.json()["name"], default.json()["scope"]) == ("Default", "read")
        for body in ({"scope": "root"}, {"name": ""}, {"name": "x" * 101}, {"extra": 1}):
            response = await client.post("/v1/api-keys", json=body, headers=ADMIN)
            assert response.status_code in (400, 422), (body, response.text)
            assert response.json()["type"] in ("invalid_request_error", "validation_error")


async def test_read_key_can_get_but_not_write_or_manage_keys(make_client: MakeClient) -> None:
    async with make_client() as client:
        key = (await create_key(client, "read"))["key"]
        assert (await client.get("/v1/agents", headers=bearer(key))).status_code == 200
        denied = await client.post("/v1/api-keys", json={"scope": "read"}, headers=bearer(key))
        assert_error(denied, 403, "permission_error")
        assert "read" in denied.json()["error"]
        assert "admin" in denied.json()["error"]
        listing = await client.get("/v1/api-keys", headers=bearer(key))
        assert_error(listing, 403, "permission_error")


async def test_write_key_is_not_admin_and_admin_key_is(make_client: MakeClient) -> None:
    async with make_client() as client:
        write = (await create_key(client, "write"))["key"]
        assert (await client.get("/v1/agents", headers=bearer(write))).status_code == 200
        assert_error(
            await client.get("/v1/api-keys", headers=bearer(write)), 403, "permission_error"
        )
        admin = (await create_key(client, "admin"))["key"]
        made = await client.post("/v1/api-keys", json={"scope": "read"}, headers=bearer(admin))
        assert made.status_code == 201


@pytest.mark.parametrize(
    "header",
    [
        "Bearer sk-smolt-" + "A" * 43,  # shaped like a key, never created
        "Bearer sk-smolt-",
        "Bearer not-a-key-at-all-0000",
        "Basic sk-smolt-xyz",
    ],
    ids=["unknown-key", "prefix-only", "garbage", "wrong-scheme"],
)
async def test_unknown_key_is_401_with_www_authenticate(
    make_client: MakeClient, header: str
) -> None:
    async with make_client() as client:
        response = await client.get("/v1/agents", headers={"Authorization": header})
        assert_error(response, 401, "authentication_error")
        assert response.headers["www-authenticate"] == "Bearer"


async def test_revoked_key_401_at_once_here_and_within_the_cache_ttl_elsewhere(
    make_client: MakeClient, clean_keys: psycopg.Connection[Any]
) -> None:
    async with make_client(key_cache_ttl_s=0.5) as client:
        first = await create_key(client, "read")
        second = await create_key(client, "read")
        for made in (first, second):
            assert (await client.get("/v1/agents", headers=bearer(made["key"]))).status_code == 200

        # Through this process: its cache forgets the key at once.
        assert (
            await client.delete(f"/v1/api-keys/{first['id']}", headers=ADMIN)
        ).status_code == 204
        revoked = await client.get("/v1/agents", headers=bearer(first["key"]))
        assert_error(revoked, 401, "authentication_error")
        assert revoked.json()["error"] == "api key revoked"
        assert revoked.headers["www-authenticate"] == "Bearer"

        # Elsewhere (the CLI, another replica): the cached lookup holds until its TTL ends.
        clean_keys.execute("UPDATE api_keys SET revoked_at = now() WHERE id = %s", [second["id"]])
        assert (await client.get("/v1/agents", headers=bearer(second["key"]))).status_code == 200
        await asyncio.sleep(0.6)
        assert_error(
            await client.get("/v1/agents", headers=bearer(second["key"])),
            401,
            "authentication_error",
        )

        listed = {
            k["id"]: k for k in (await client.get("/v1/api-keys", headers=ADMIN)).json()["keys"]
        }
        assert listed[first["id"]]["revoked_at"] is not None


async def test_revoke_is_idempotent_and_unknown_id_404(make_client: MakeClient) -> None:
    async with make_client() as client:
        made = await create_key(client, "read")
        for _ in range(2):
            response = await client.delete(f"/v1/api-keys/{made['id']}", headers=ADMIN)
            assert response.status_code == 204
        missing = await client.delete("/v1/api-keys/ak-0000000000000000", headers=ADMIN)
        assert_error(missing, 404, "not_found")


async def test_last_used_at_is_recorded(make_client: MakeClient, clean_keys: Any) -> None:
    async with make_client() as client:
        made = await create_key(client, "read")
        for _ in range(3):
            assert (await client.get("/v1/agents", headers=bearer(made["key"]))).status_code == 200
        listed = (await client.get("/v1/api-keys", headers=ADMIN)).json()["keys"]
        assert listed[0]["last_used_at"] is not None
        row = clean_keys.execute("SELECT key_hash FROM api_keys").fetchone()
        assert row is not None
        assert made["key"] not in row[0]


# ---------------------------------------------------------------------------------------------
# Rate limits


async def test_rate_limit_429_with_retry_after(make_client: MakeClient) -> None:
    async with make_client(rate_limit_per_min=60, rate_limit_burst=3) as client:
        key = (await create_key(client, "read"))["key"]
        other = (await create_key(client, "read"))["key"]
        before = metric("smoltbot_api_rate_limited_total")
        for _ in range(3):
            assert (await client.get("/v1/agents", headers=bearer(key))).status_code == 200
        limited = await client.get("/v1/agents", headers=bearer(key))
        assert_error(limited, 429, "rate_limit_error")
        assert 1 <= int(limited.headers["retry-after"]) <= 2
        assert metric("smoltbot_api_rate_limited_total") == before + 1
        # Per key: another key, and the admin token (never limited), still go through.
        assert (await client.get("/v1/agents", headers=bearer(other))).status_code == 200
        for _ in range(5):
            assert (await client.get("/v1/agents", headers=ADMIN)).status_code == 200
        # One token a second comes back.
        await asyncio.sleep(1.1)
        assert (await client.get("/v1/agents", headers=bearer(key))).status_code == 200


async def test_rate_limit_zero_turns_it_off(make_client: MakeClient) -> None:
    async with make_client(rate_limit_per_min=0, rate_limit_burst=1) as client:
        key = (await create_key(client, "read"))["key"]
        for _ in range(5):
            assert (await client.get("/v1/agents", headers=bearer(key))).status_code == 200


async def test_redis_down_requests_still_served(make_client: MakeClient) -> None:
    closed = f"redis://127.0.0.1:{free_port()}/0"
    async with make_client(redis_url=closed, rate_limit_per_min=60, rate_limit_burst=1) as client:
        key = (await create_key(client, "read"))["key"]
        before = metric("smoltbot_api_rate_limit_fail_open_total")
        for _ in range(4):
            assert (await client.get("/v1/agents", headers=bearer(key))).status_code == 200
        assert metric("smoltbot_api_rate_limit_fail_open_total") == before + 4


async def test_redis_hanging_costs_little(make_client: MakeClient) -> None:
    """A Redis that accepts but never answers: the short timeout and the breaker keep requests
    quick, and they are served."""
    proxy = FaultProxy("127.0.0.1", int(REDIS_URL.rsplit(":", 1)[1].split("/")[0])).start()
    try:
        proxy.set_mode("blackhole")
        url = f"redis://{proxy.url_host_port}/0"
        async with make_client(redis_url=url, rate_limit_per_min=60, rate_limit_burst=1) as client:
            key = (await create_key(client, "read"))["key"]
            started = time.monotonic()
            for _ in range(10):
                assert (await client.get("/v1/agents", headers=bearer(key))).status_code == 200
            assert time.monotonic() - started < 3.0
    finally:
        proxy.set_mode("cut")  # closes the held connections first
        proxy.stop()


# ---------------------------------------------------------------------------------------------
# Secrecy and documentation


async def test_key_never_logged(make_client: MakeClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    closed = f"redis://127.0.0.1:{free_port()}/0"  # the fail-open warning is logged too
    async with make_client(redis_url=closed) as client:
        made = await create_key(client, "read")
        await client.get("/v1/agents", headers=bearer(made["key"]))
        await client.get("/v1/api-keys", headers=ADMIN)
        await client.delete(f"/v1/api-keys/{made['id']}", headers=ADMIN)
        await client.get("/v1/agents", headers=bearer(made["key"]))
    assert caplog.records, "expected some log records"
    for record in caplog.records:
        assert made["key"] not in str(record.__dict__)
        assert made["key"][len(made["key_prefix"]) :] not in record.getMessage()


async def test_openapi_documents_401_403_429(make_client: MakeClient) -> None:
    async with make_client() as client:
        spec = (await client.get("/v1/openapi.json")).json()
    for path, method in (("/v1/api-keys", "post"), ("/v1/agents", "get")):
        responses = spec["paths"][path][method]["responses"]
        assert {"401", "403", "429"} <= set(responses)
        assert "Retry-After" in responses["429"]["headers"]
    scheme = spec["components"]["securitySchemes"]["BearerAuth"]
    assert "403" in scheme["description"]
    assert "429" in scheme["description"]
    assert spec["paths"]["/v1/api-keys/{key_id}"]["delete"]["responses"].keys() >= {"204", "404"}


# ---------------------------------------------------------------------------------------------
# The scope rules on their own


@pytest.mark.parametrize(
    ("opt", "method", "needed"),
    [
        ({}, "GET", "read"),
        ({}, "HEAD", "read"),
        ({}, "POST", "admin"),  # undeclared mutating routes are closed to write keys
        ({}, "DELETE", "admin"),
        (scope("write"), "PUT", "write"),
        (scope("admin"), "GET", "admin"),
        ({"scope": "superuser"}, "GET", "admin"),  # a typo closes the route, never opens it
    ],
)
def test_required_scope(opt: dict[str, Any], method: str, needed: str) -> None:
    assert required_scope(opt, method) == needed


def test_scope_order() -> None:
    assert scope_allows("admin", "write")
    assert scope_allows("write", "read")
    assert scope_allows("read", "read")
    assert not scope_allows("read", "write")
    assert not scope_allows("write", "admin")
    assert not scope_allows("nonsense", "read")
