"""Agent enforcement and containment through the api: PostgreSQL first, then cfg:{agent}
(architecture §4), the containment log, and the reconcile loop that repairs either side."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import psycopg
import pytest
import redis as redis_lib
from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.exceptions import ConnectionError as RedisConnectionError
from smoltbot_api import ApiSettings, create_app
from smoltbot_api.app import api_context
from smoltbot_api.control import AgentControl, api_redis_client
from smoltbot_api.db import Database
from smoltbot_api.metrics import CFG_REPAIRS
from smoltbot_contracts import AgentConfig
from smoltbot_contracts.streams import cfg_key
from smoltbot_testing.env import REDIS_URL

AGENT = "smolt-00c0ffee"
# Must equal conftest.TOKEN (test modules cannot import conftest under this pytest setup).
TOKEN = "test-admin-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BASE_TIME = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def api_settings(database_url: str, **overrides: Any) -> ApiSettings:
    return ApiSettings(database_url=database_url, admin_token=TOKEN, **overrides)


async def wait_started(client: AsyncTestClient[Any], timeout_s: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while (await client.get("/health/startup")).status_code != 200:
        assert asyncio.get_running_loop().time() < deadline, "api did not start"
        await asyncio.sleep(0.05)


def stored(redis_sync: redis_lib.Redis, prefix: str, agent: str = AGENT) -> AgentConfig | None:
    raw = redis_sync.hget(cfg_key(prefix, agent), "b")
    return None if raw is None else msgspec.msgpack.decode(raw, type=AgentConfig)  # type: ignore[arg-type]


def put_cfg(redis_sync: redis_lib.Redis, prefix: str, config: AgentConfig) -> None:
    redis_sync.hset(cfg_key(prefix, AGENT), "b", msgspec.msgpack.encode(config))


def row(db: psycopg.Connection[Any], agent: str = AGENT) -> dict[str, Any]:
    cur = db.cursor(row_factory=psycopg.rows.dict_row)
    found = cur.execute("SELECT * FROM agents WHERE id = %s", [agent]).fetchone()
    assert found is not None
    return found


def log_rows(db: psycopg.Connection[Any], agent: str = AGENT) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT action, actor, previous_status, new_status, reason FROM agent_containment_log"
        " WHERE agent_id = %s ORDER BY decided_at",
        [agent],
    ).fetchall()


@pytest.fixture
async def app(database_url: str, db: psycopg.Connection[Any], prefix: str) -> Litestar:
    app = create_app(api_settings(database_url, redis_url=REDIS_URL, stream_prefix=prefix))
    api_context(app).control.reconcile_interval_s = 0  # the tests run passes themselves
    return app


@pytest.fixture
async def api(app: Litestar, rows: Any) -> AsyncIterator[AsyncTestClient[Any]]:
    rows.agent(AGENT)
    async with AsyncTestClient(app=app) as client:
        await wait_started(client)
        client.headers.update(AUTH)
        yield client


@pytest.fixture
async def control(database_url: str, prefix: str) -> AsyncIterator[AgentControl]:
    """A second AgentControl on the test's own event loop (the app's clients live on the test
    client's loop), as another api replica would be."""
    db = Database(database_url, min_size=1, max_size=2, timeout_s=5.0)
    db.start()
    assert await db.wait_connected(10.0)
    control = AgentControl(db, api_redis_client(REDIS_URL), prefix, reconcile_interval_s=0)
    try:
        yield control
    finally:
        await control.close()
        await db.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_enforcement_defaults_and_unknown_agent(api: AsyncTestClient[Any]) -> None:
    response = await api.get(f"/v1/agents/{AGENT}/enforcement")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "agent_id": AGENT,
        "enforcement_mode": "observe",
        "nudge_strategy": "always",
        "nudge_rate": 100,
        "nudge_threshold": 3,
        "failure_policy": None,
        "aip_enabled": True,
        "aap_enabled": True,
        "auto_containment_threshold": 5,
        "cfg_version": 0,
        "updated": None,
        "cfg_synced": None,
    }
    for method, path in (
        ("GET", "enforcement"),
        ("PUT", "enforcement"),
        ("GET", "containment"),
        ("POST", "pause"),
        ("POST", "resume"),
        ("POST", "kill"),
        ("POST", "reactivate"),
    ):
        body = {"mode": "nudge"} if method == "PUT" else None
        missing = await api.request(method, f"/v1/agents/smolt-nope/{path}", json=body)
        assert missing.status_code == 404, (path, missing.text)
        assert missing.json()["type"] == "not_found"


async def test_put_enforcement_writes_row_then_cfg_with_increasing_versions(
    api: AsyncTestClient[Any], db: psycopg.Connection[Any], redis_sync: redis_lib.Redis, prefix: str
) -> None:
    response = await api.put(
        f"/v1/agents/{AGENT}/enforcement",
        json={"mode": "enforce", "nudge_strategy": "sampling", "nudge_rate": 40},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["enforcement_mode"], body["nudge_rate"], body["cfg_version"]) == ("enforce", 40, 1)
    assert (body["updated"], body["cfg_synced"]) == (True, True)
    pg = row(db)
    assert (pg["enforcement_mode"], pg["nudge_strategy"], pg["nudge_rate"], pg["cfg_version"]) == (
        "enforce",
        "sampling",
        40,
        1,
    )
    cfg = stored(redis_sync, prefix)
    assert cfg is not None
    assert (cfg.enforcement_mode, cfg.nudge_strategy, cfg.nudge_rate, cfg.cfg_version) == (
        "enforce",
        "sampling",
        40,
        1,
    )

    second = await api.put(
        f"/v1/agents/{AGENT}/enforcement",
        json={
            "failure_policy": "fail_closed",
            "auto_containment_threshold": 0,
            "aap_enabled": False,
        },
    )
    assert second.status_code == 200, second.text
    cfg = stored(redis_sync, prefix)
    assert cfg is not None
    assert cfg.cfg_version == 2 == row(db)["cfg_version"]
    assert (cfg.enforcement_mode, cfg.failure_policy, cfg.auto_containment_threshold) == (
        "enforce",
        "fail_closed",
        0,
    )
    assert cfg.aap_enabled is False
    read = (await api.get(f"/v1/agents/{AGENT}/enforcement")).json()
    assert (read["cfg_version"], read["aap_enabled"]) == (2, False)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"mode": "loud"}, "mode"),
        ({"nudge_rate": 101}, "nudge_rate"),
        ({"nudge_rat": 5}, "nudge_rat"),
        ({"auto_containment_threshold": 1}, "auto_containment_threshold"),
        ({}, "mode"),
    ],
)
async def test_bad_enforcement_body_names_the_field(
    api: AsyncTestClient[Any], db: psycopg.Connection[Any], body: dict[str, Any], field: str
) -> None:
    response = await api.put(f"/v1/agents/{AGENT}/enforcement", json=body)
    assert response.status_code in {400, 422}, response.text
    assert field in response.json()["error"]
    assert row(db)["cfg_version"] == 0


async def test_containment_actions_log_and_state_checks(
    api: AsyncTestClient[Any], db: psycopg.Connection[Any], redis_sync: redis_lib.Redis, prefix: str
) -> None:
    paused = await api.post(f"/v1/agents/{AGENT}/pause", json={"reason": "runaway tool use"})
    assert paused.status_code == 200, paused.text
    body = paused.json()
    assert (body["containment_status"], body["previous_status"]) == ("paused", "active")
    assert (body["contained_by"], body["containment_reason"]) == ("admin-token", "runaway tool use")
    assert body["cfg_synced"] is True
    cfg = stored(redis_sync, prefix)
    assert cfg is not None
    assert (cfg.containment, cfg.cfg_version) == ("paused", 1)
    pg = row(db)
    assert (pg["containment_status"], pg["containment_reason"], pg["cfg_version"]) == (
        "paused",
        "runaway tool use",
        1,
    )

    again = await api.post(f"/v1/agents/{AGENT}/pause")
    assert again.status_code == 409, again.text
    assert "already paused" in again.json()["error"]
    assert (await api.post(f"/v1/agents/{AGENT}/reactivate")).status_code == 409

    assert (await api.post(f"/v1/agents/{AGENT}/resume")).json()["containment_status"] == "active"
    killed = await api.post(f"/v1/agents/{AGENT}/kill", json={"reason": "compromised"})
    assert killed.json()["containment_status"] == "killed"
    wrong = await api.post(f"/v1/agents/{AGENT}/resume")
    assert wrong.status_code == 409
    assert "reactivate" in wrong.json()["error"]
    back = await api.post(f"/v1/agents/{AGENT}/reactivate")
    assert back.json()["containment_status"] == "active"
    cfg = stored(redis_sync, prefix)
    assert cfg is not None
    assert (cfg.containment, cfg.cfg_version) == ("active", 4)
    assert log_rows(db) == [
        ("pause", "admin-token", "active", "paused", "runaway tool use"),
        ("resume", "admin-token", "paused", "active", "resumed by an operator"),
        ("kill", "admin-token", "active", "killed", "compromised"),
        ("reactivate", "admin-token", "killed", "active", "reactivated by an operator"),
    ]

    state = (await api.get(f"/v1/agents/{AGENT}/containment", params={"limit": 2})).json()
    assert (state["status"], state["cfg_version"], state["total"], state["limit"]) == (
        "active",
        4,
        4,
        2,
    )
    assert [e["action"] for e in state["log"]] == ["reactivate", "kill"]
    older = (
        await api.get(f"/v1/agents/{AGENT}/containment", params={"limit": 2, "offset": 2})
    ).json()
    assert [e["action"] for e in older["log"]] == ["resume", "pause"]

    too_long = await api.post(f"/v1/agents/{AGENT}/pause", json={"reason": "x" * 501})
    assert too_long.status_code in {400, 422}
    assert "reason" in too_long.json()["error"]


async def test_auto_containment_shows_and_an_operator_resume_goes_above_it(
    api: AsyncTestClient[Any],
    control: AgentControl,
    db: psycopg.Connection[Any],
    redis_sync: redis_lib.Redis,
    prefix: str,
) -> None:
    """The verifier pauses in cfg:{a} only (its log row comes from the persister)."""
    put_cfg(redis_sync, prefix, AgentConfig(enforcement_mode="nudge", cfg_version=0))
    await control.state.contain(AGENT, "5 violations", cause="ctl-x")
    db.execute(
        "INSERT INTO agent_containment_log (id, agent_id, action, actor, reason, new_status,"
        " checkpoint_id, streak_start, consecutive_violations, threshold, decided_at)"
        " VALUES ('ctl-x', %s, 'auto_pause', 'system', '5 violations', 'paused', 'ic-5',"
        " 'ic-1', 5, 5, %s)",
        [AGENT, BASE_TIME],
    )
    state = (await api.get(f"/v1/agents/{AGENT}/containment")).json()
    assert (state["status"], state["contained_by"], state["containment_reason"]) == (
        "paused",
        "system",
        "5 violations",
    )
    assert state["cfg_version"] == 1
    assert state["log"][0]["action"] == "auto_pause"
    assert state["log"][0]["consecutive_violations"] == 5
    assert row(db)["containment_status"] == "active"  # not adopted yet

    resumed = await api.post(f"/v1/agents/{AGENT}/resume")
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["previous_status"] == "paused"
    cfg = stored(redis_sync, prefix)
    assert cfg is not None
    assert (cfg.containment, cfg.cfg_version, cfg.enforcement_mode) == ("active", 2, "nudge")
    pg = row(db)
    assert (pg["containment_status"], pg["cfg_version"], pg["enforcement_mode"]) == (
        "active",
        2,
        "nudge",
    )


async def test_reconcile_rewrites_missing_or_stale_cfg_and_adopts_newer(
    api: AsyncTestClient[Any],
    control: AgentControl,
    db: psycopg.Connection[Any],
    redis_sync: redis_lib.Redis,
    prefix: str,
    rows: Any,
) -> None:
    assert (
        await api.put(f"/v1/agents/{AGENT}/enforcement", json={"mode": "enforce"})
    ).status_code == 200
    other = "smolt-00000002"
    rows.agent(other, last_seen_at=BASE_TIME - timedelta(hours=1))
    redis_sync.delete(cfg_key(prefix, AGENT))
    before = CFG_REPAIRS.labels("redis")._value.get()

    assert await control.reconcile_once() == {"redis": 1, "postgres": 0}
    cfg = stored(redis_sync, prefix)
    assert cfg is not None
    assert (cfg.enforcement_mode, cfg.cfg_version) == ("enforce", 1)
    assert stored(redis_sync, prefix, other) is None  # never configured: no key needed
    assert CFG_REPAIRS.labels("redis")._value.get() == before + 1

    put_cfg(redis_sync, prefix, AgentConfig(enforcement_mode="observe", cfg_version=0))
    assert await control.reconcile_once() == {"redis": 1, "postgres": 0}
    cfg = stored(redis_sync, prefix)
    assert cfg is not None
    assert (cfg.enforcement_mode, cfg.cfg_version) == ("enforce", 1)

    await control.state.contain(AGENT, "auto")
    assert await control.reconcile_once() == {"redis": 0, "postgres": 1}
    pg = row(db)
    assert (pg["containment_status"], pg["cfg_version"], pg["contained_by"]) == (
        "paused",
        2,
        "system",
    )
    assert await control.reconcile_once() == {"redis": 0, "postgres": 0}


async def test_reconcile_runs_on_one_replica_at_a_time(
    control: AgentControl, api: AsyncTestClient[Any], database_url: str
) -> None:
    with psycopg.connect(database_url, autocommit=True) as other:
        with other.transaction():
            other.execute("SELECT pg_advisory_xact_lock(%s)", [0x736D6F6C74636667])
            assert await control.reconcile_once() is None
    assert await control.reconcile_once() is not None


async def test_redis_failing_after_commit_answers_200_and_reconcile_repairs(
    api: AsyncTestClient[Any],
    app: Litestar,
    control: AgentControl,
    db: psycopg.Connection[Any],
    redis_sync: redis_lib.Redis,
    prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:

    async def broken(*_: Any, **__: Any) -> Any:
        raise RedisConnectionError("connection refused")

    monkeypatch.setattr(api_context(app).control.state, "put", broken)
    response = await api.post(f"/v1/agents/{AGENT}/pause", json={"reason": "now"})
    assert response.status_code == 200, response.text
    assert response.json()["cfg_synced"] is False
    assert row(db)["containment_status"] == "paused"
    assert stored(redis_sync, prefix) is None
    monkeypatch.undo()
    assert await control.reconcile_once() == {"redis": 1, "postgres": 0}
    cfg = stored(redis_sync, prefix)
    assert cfg is not None
    assert (cfg.containment, cfg.cfg_version) == ("paused", 1)


async def test_redis_down_before_commit_is_503_and_changes_nothing(
    database_url: str, db: psycopg.Connection[Any], rows: Any
) -> None:
    rows.agent(AGENT)
    settings = api_settings(
        database_url,
        redis_url=f"redis://127.0.0.1:{_free_port()}/0",
        stream_prefix=f"t-{uuid.uuid4().hex[:8]}:",
    )
    async with AsyncTestClient(app=create_app(settings)) as client:
        await wait_started(client)
        response = await client.post(f"/v1/agents/{AGENT}/pause", headers=AUTH)
        assert response.status_code == 503, response.text
        assert response.json()["type"] == "service_unavailable"
        read = await client.get(f"/v1/agents/{AGENT}/containment", headers=AUTH)
        assert read.status_code == 200, read.text
        assert read.json()["status"] == "active"
    assert row(db)["cfg_version"] == 0
    assert log_rows(db) == []


async def test_the_background_loop_repairs_a_flushed_key(
    database_url: str,
    db: psycopg.Connection[Any],
    rows: Any,
    redis_sync: redis_lib.Redis,
    prefix: str,
) -> None:
    rows.agent(AGENT)
    app = create_app(api_settings(database_url, redis_url=REDIS_URL, stream_prefix=prefix))
    api_context(app).control.reconcile_interval_s = 0.1
    async with AsyncTestClient(app=app) as client:
        await wait_started(client)
        changed = await client.put(
            f"/v1/agents/{AGENT}/enforcement", json={"mode": "nudge"}, headers=AUTH
        )
        assert changed.status_code == 200, changed.text
        redis_sync.delete(cfg_key(prefix, AGENT))
        deadline = asyncio.get_running_loop().time() + 5
        while stored(redis_sync, prefix) is None:
            assert asyncio.get_running_loop().time() < deadline, "not repaired within 5 s"
            await asyncio.sleep(0.05)
    cfg = stored(redis_sync, prefix)
    assert cfg is not None
    assert (cfg.enforcement_mode, cfg.cfg_version) == ("nudge", 1)
