"""A pause through the api stops the agent at the gateway within 1 s, with the persister
stopped: the api writes ``cfg:{agent}`` itself right after its PostgreSQL commit (architecture
§4), nothing waits on a stream. Real api and gateway processes; the agents row is inserted as the
persister would have written it on the agent's first sight."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import httpx
import psycopg
import pytest
from smoltbot_contracts.ids import agent_hash, agent_id
from smoltbot_testing.env import REDIS_URL
from smoltbot_testing.fake_upstream import FakeUpstream, message_request
from smoltbot_testing.procs import ServiceSet, base_env

pytestmark = pytest.mark.e2e

ADMIN_TOKEN = "e2e-admin-token-0123456789"
BOUND_S = 1.0
SLACK_S = 0.25  # one poll interval plus a call's own time on a busy machine


@pytest.fixture
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream().in_thread() as upstream:
        yield upstream


@pytest.fixture
def services(
    fake: FakeUpstream, database_url: str, stream_prefix: str, tmp_path: Path
) -> Iterator[ServiceSet]:
    env = base_env(
        redis_url=REDIS_URL,
        database_url=database_url,
        prefix=stream_prefix,
        admin_token=ADMIN_TOKEN,
        upstream_url=fake.url,
    )
    env["SMOLTBOT_SPOOL_DIR"] = str(tmp_path / "spool")
    running = ServiceSet(env=env, log_dir=tmp_path)
    try:
        running.start("api")
        running.start("gateway")  # no persister, observer or verifier
        yield running
    finally:
        running.stop_all()


def _blocked_within(gateway: httpx.Client, key: str, since: float, *, status: int) -> float:
    request = message_request("may I?")
    while time.monotonic() - since < 5:
        answer = gateway.post("/anthropic/v1/messages", json=request, headers={"x-api-key": key})
        if answer.status_code == status:
            if status == 403:
                body = answer.json()
                assert (body["type"], body["reason"]) == ("containment_error", "agent_paused")
            return time.monotonic() - since
        time.sleep(0.02)
    raise AssertionError(f"the gateway did not answer {status} within 5 s")


def test_pause_through_the_api_blocks_the_next_call_and_resume_lets_it_through(
    services: ServiceSet, database_url: str
) -> None:
    key = f"sk-api-pause-{uuid4().hex[:12]}"
    digest = agent_hash(key)
    agent = agent_id(digest)
    now = datetime.now(UTC)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO agents (id, agent_hash, first_seen_at, last_seen_at)"
            " VALUES (%s, %s, %s, %s)",
            [agent, digest, now, now],
        )
    api = httpx.Client(
        base_url=services.url("api"),
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=10,
    )
    gateway = httpx.Client(base_url=services.url("gateway"), timeout=10)
    try:
        request = message_request("still allowed?")
        for _ in range(3):  # the gateway knows the agent (no config yet) and caches it
            ok = gateway.post("/anthropic/v1/messages", json=request, headers={"x-api-key": key})
            assert ok.status_code == 200, ok.text

        paused = api.post(f"/v1/agents/{agent}/pause", json={"reason": "e2e"})
        written = time.monotonic()
        assert paused.status_code == 200, paused.text
        assert paused.json()["cfg_synced"] is True
        assert _blocked_within(gateway, key, written, status=403) <= BOUND_S + SLACK_S

        resumed = api.post(f"/v1/agents/{agent}/resume")
        lifted = time.monotonic()
        assert resumed.status_code == 200, resumed.text
        assert _blocked_within(gateway, key, lifted, status=200) <= BOUND_S + SLACK_S

        state = api.get(f"/v1/agents/{agent}/containment").json()
        assert state["status"] == "active"
        assert [e["action"] for e in state["log"]] == ["resume", "pause"]
    finally:
        api.close()
        gateway.close()
