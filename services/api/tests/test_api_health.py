"""Probes while PostgreSQL is unreachable at start: serve 503s, keep retrying, recover."""

from __future__ import annotations

import asyncio
import urllib.parse
from typing import Any

from litestar.testing import AsyncTestClient
from smoltbot_api import ApiSettings, create_app
from smoltbot_api.app import api_context
from smoltbot_testing.faults import FaultProxy
from smoltbot_testing.net import free_port

TOKEN = "test-admin-token-0123456789abcdef"


async def _poll(client: Any, path: str, status: int, timeout_s: float) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        response = await client.get(path)
        if response.status_code == status or asyncio.get_running_loop().time() > deadline:
            return response
        await asyncio.sleep(0.1)


async def test_unreachable_db_gives_503_then_recovers(database_url: str, db: Any) -> None:
    parts = urllib.parse.urlsplit(database_url)
    # The database is "down" (every connection reset) until the proxy passes traffic.
    forwarder = FaultProxy(parts.hostname or "127.0.0.1", parts.port or 5432).start()
    forwarder.set_mode("cut")
    proxied = parts._replace(netloc=f"postgres@127.0.0.1:{forwarder.port}")
    app = create_app(ApiSettings(database_url=urllib.parse.urlunsplit(proxied), admin_token=TOKEN))
    try:
        async with AsyncTestClient(app=app) as client:
            await asyncio.sleep(1.0)  # several connection attempts fail meanwhile
            assert not api_context(app).db.connected

            startup = await client.get("/health/startup")
            assert startup.status_code == 503
            assert startup.json() == {"status": "starting"}
            assert (await client.get("/health/ready")).status_code == 503
            assert (await client.get("/health/live")).status_code == 200
            api = await client.get("/v1/agents", headers={"Authorization": f"Bearer {TOKEN}"})
            assert api.status_code == 503
            assert api.json() == {
                "error": "database not connected yet, retry later",
                "type": "service_unavailable",
            }

            forwarder.set_mode("pass")  # the database "comes up"

            assert (await _poll(client, "/health/startup", 200, 20.0)).status_code == 200
            assert api_context(app).db.connected
            ready = await _poll(client, "/health/ready", 200, 10.0)
            assert ready.status_code == 200, ready.text
            assert ready.json()["checks"]["postgres"]["ok"] is True
            api = await client.get("/v1/agents", headers={"Authorization": f"Bearer {TOKEN}"})
            assert api.status_code == 200

            forwarder.set_mode(
                "cut"
            )  # and goes away again: readiness follows, the process stays up

            not_ready = await _poll(client, "/health/ready", 503, 10.0)
            assert not_ready.status_code == 503
            assert not_ready.json()["status"] == "degraded"
            assert (await client.get("/health/live")).status_code == 200
            down = await client.get("/v1/agents", headers={"Authorization": f"Bearer {TOKEN}"})
            assert down.status_code == 503
            assert down.json()["type"] == "service_unavailable"
    finally:
        forwarder.stop()


async def test_shutdown_while_db_never_reached_is_clean() -> None:
    port = free_port()
    app = create_app(
        ApiSettings(database_url=f"postgresql://postgres@127.0.0.1:{port}/x", admin_token=TOKEN)
    )
    async with AsyncTestClient(app=app) as client:
        assert (await client.get("/health/startup")).status_code == 503
        assert (await client.get("/health/live")).status_code == 200
    assert not api_context(app).db.connected
