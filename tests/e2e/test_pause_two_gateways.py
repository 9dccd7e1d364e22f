"""A pause written to ``cfg:{agent}`` stops the agent on every gateway within 1 s (architecture
§5.2: configs are cached 0.5 s and served stale 0.5 s more while one read refreshes them): two
real gateway processes, both busy with the agent's calls, both answer 403 ``containment_error``
within 1 s of the write, plus polling slack."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import httpx
import msgspec
import pytest
import redis
from smoltbot_contracts import AgentConfig
from smoltbot_contracts.ids import agent_hash, agent_id
from smoltbot_contracts.streams import cfg_key
from smoltbot_testing.env import REDIS_URL
from smoltbot_testing.fake_upstream import FakeUpstream, message_request
from smoltbot_testing.procs import ServiceSet, base_env

pytestmark = pytest.mark.e2e

BOUND_S = 1.0  # SMOLTBOT config cache: 0.5 s TTL + 0.5 s grace
SLACK_S = 0.25  # one poll interval plus a call's own time on a busy machine


@pytest.fixture
def gateways(fake: FakeUpstream, stream_prefix: str, tmp_path: Path) -> Iterator[list[str]]:
    sets: list[ServiceSet] = []
    try:
        for n in (1, 2):
            log_dir = tmp_path / f"gw{n}"
            log_dir.mkdir()
            env = base_env(
                redis_url=REDIS_URL,
                database_url="postgresql://unused@127.0.0.1:1/unused",
                prefix=stream_prefix,
                admin_token="e2e-admin-token-0123456789",
                upstream_url=fake.url,
            )
            env["SMOLTBOT_SPOOL_DIR"] = str(log_dir / "spool")
            running = ServiceSet(env=env, log_dir=log_dir)
            sets.append(running)
            running.start("gateway")
        yield [s.url("gateway") for s in sets]
    finally:
        for running in sets:
            running.stop_all()


@pytest.fixture
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream().in_thread() as upstream:
        yield upstream


def test_a_pause_reaches_both_gateways_within_a_second(
    gateways: list[str], stream_prefix: str
) -> None:
    key = f"sk-pause-{uuid4().hex[:12]}"
    agent = agent_id(agent_hash(key))
    request = message_request("still allowed?")
    clients = [httpx.Client(base_url=url, timeout=10) for url in gateways]
    store = redis.Redis.from_url(REDIS_URL)
    try:
        # Both gateways know the agent (active: no config yet) and keep calling it.
        for client in clients:
            for _ in range(3):
                ok = client.post("/anthropic/v1/messages", json=request, headers={"x-api-key": key})
                assert ok.status_code == 200
        paused = msgspec.msgpack.encode(AgentConfig(containment="paused", cfg_version=2))
        store.hset(cfg_key(stream_prefix, agent), "b", paused)
        written = time.monotonic()
        blocked_after: dict[int, float] = {}
        while len(blocked_after) < len(clients) and time.monotonic() - written < 5:
            for n, client in enumerate(clients):
                if n in blocked_after:
                    continue
                answer = client.post(
                    "/anthropic/v1/messages", json=request, headers={"x-api-key": key}
                )
                if answer.status_code == 403:
                    assert answer.json()["type"] == "containment_error"
                    assert answer.json()["reason"] == "agent_paused"
                    blocked_after[n] = time.monotonic() - written
                else:
                    assert answer.status_code == 200
            time.sleep(0.02)
        assert sorted(blocked_after) == [0, 1], f"not paused everywhere: {blocked_after}"
        assert max(blocked_after.values()) <= BOUND_S + SLACK_S, blocked_after
    finally:
        for client in clients:
            client.close()
        store.close()
