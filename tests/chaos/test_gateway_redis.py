"""A2: the gateway's Redis goes away (fault proxy) or the bus fills up; calls must not notice and
no event may be lost or duplicated."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import redis
from smoltbot_testing.env import REDIS_URL
from smoltbot_testing.faults import FaultProxy
from smoltbot_testing.procs import ServiceSet

from tests.chaos.helpers import (
    StartPipeline,
    assert_landed_once,
    counts,
    dead_letters,
    new_agent,
    post_message,
)
from tests.conftest import poll

pytestmark = pytest.mark.chaos

SHARED_REDIS_PORT = int(REDIS_URL.rsplit(":", 1)[1].split("/")[0])
# Without the breaker a call would wait on Redis socket timeouts (seconds). With it, only the
# first detection costs the config-read budget (50 ms). This bound separates the two cases by
# an order of magnitude, so it is not a speed assertion but a "did it wait on Redis" one.
WAITED_ON_REDIS_S = 1.5


@pytest.fixture
def proxy() -> Iterator[FaultProxy]:
    with FaultProxy("127.0.0.1", SHARED_REDIS_PORT) as p:
        yield p


@pytest.fixture
def services(
    start_pipeline: StartPipeline, proxy: FaultProxy, tmp_path: Path
) -> Iterator[ServiceSet]:
    # Only the gateway talks to Redis through the fault proxy.
    gateway_env = {
        "REDIS_URL": f"redis://127.0.0.1:{proxy.port}/0",
        "SMOLTBOT_SPOOL_DIR": str(tmp_path / "spool"),
    }
    with start_pipeline(overrides={"gateway": gateway_env}) as stack:
        yield stack


def burst(gateway: str, key: str, n: int, start: int = 0) -> list[tuple[int, float]]:
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(
            pool.map(lambda i: post_message(gateway, key, f"call {i}"), range(start, start + n))
        )


def metric(text: str, name: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def spooled(services: ServiceSet) -> float:
    return metric(
        httpx.get(f"{services.url('gateway')}/metrics").text, "smoltbot_bus_spooled_total"
    )


@pytest.mark.parametrize("fault", ["cut", "blackhole"])
def test_calls_succeed_during_a_redis_outage_and_every_event_lands_once(
    services: ServiceSet, proxy: FaultProxy, database_url: str, stream_prefix: str, fault: str
) -> None:
    key, agent = new_agent("cut")
    gateway = services.url("gateway")
    assert all(status == 200 for status, _ in burst(gateway, key, 5))
    poll(lambda: counts(database_url, agent)[0] == 5, timeout_s=60)

    proxy.set_mode(fault)  # type: ignore[arg-type]
    results = burst(gateway, key, 100, start=5)
    assert [status for status, _ in results] == [200] * 100
    slow = [round(elapsed, 2) for _, elapsed in results if elapsed > WAITED_ON_REDIS_S]
    assert slow == [], f"calls waited on the dead Redis: {slow}"
    poll(lambda: spooled(services) > 0, timeout_s=30)  # events went to disk, not to /dev/null

    proxy.set_mode("pass")
    assert_landed_once(database_url, stream_prefix, agent, (105, 105, 105))


def test_gateway_sigterm_during_an_outage_spools_and_its_successor_replays(
    services: ServiceSet, proxy: FaultProxy, database_url: str, stream_prefix: str
) -> None:
    key, agent = new_agent("restart")
    proxy.set_mode("cut")
    first = burst(services.url("gateway"), key, 50)
    assert services.terminate("gateway") == 0  # flushes or spools, never drops
    services.start("gateway")  # new process, new instance name: adopts the orphaned spool
    second = burst(services.url("gateway"), key, 50, start=50)
    assert [s for s, _ in first + second] == [200] * 100
    proxy.set_mode("pass")
    assert_landed_once(database_url, stream_prefix, agent, (100, 100, 100))


def test_bus_stays_under_budget_when_the_only_consumer_stops(
    start_pipeline: StartPipeline,
    database_url: str,
    stream_prefix: str,
    redis_sync: redis.Redis,
    tmp_path: Path,
) -> None:
    budget = 1_000_000
    env = {
        "SMOLTBOT_BUS_MAX_BYTES": str(budget),
        "SMOLTBOT_BUS_TRIM_INTERVAL_S": "0.5",
        "SMOLTBOT_SPOOL_DIR": str(tmp_path / "spool"),
    }
    key, agent = new_agent("budget")
    with start_pipeline(env=env) as stack:
        assert stack.terminate("observer") == 0  # the exchanges group's only consumer is gone
        big = os.urandom(12_000).hex()  # ~24 KB request, echoed back: ~50 KB per exchange
        peak = 0
        for n in range(80):
            status, _ = post_message(stack.url("gateway"), key, f"{n} {big}")
            assert status == 200
            peak = max(peak, int(redis_sync.memory_usage(f"{stream_prefix}exchanges") or 0))
        # Over budget the gateway spools; at most one measurement's worth of overshoot.
        assert peak < budget * 1.3, f"bus grew to {peak} bytes (budget {budget})"
        gateway_metrics = httpx.get(f"{stack.url('gateway')}/metrics").text
        assert metric(gateway_metrics, "smoltbot_bus_spooled_total") > 0
        assert re.search(r"^smoltbot_bus_over_budget 1\.0$", gateway_metrics, re.M)

        stack.start("observer")  # the consumer returns: backlog drains, spool replays
        poll(lambda: counts(database_url, agent) == (80, 80, 80), timeout_s=180)
        assert dead_letters(stream_prefix) == 0
