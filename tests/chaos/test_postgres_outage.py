"""A2: PostgreSQL goes away under a running persister (fault proxy). Events wait in the bus — no
delivery is spent, nothing is dead-lettered — and land exactly once when it comes back."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import httpx
import pytest
from smoltbot_testing.faults import FaultProxy

from tests.chaos.helpers import StartPipeline, counts, dead_letters, new_agent, post_message
from tests.conftest import poll

pytestmark = pytest.mark.chaos


@pytest.fixture
def pg_proxy(database_url: str) -> Iterator[FaultProxy]:
    parts = urlsplit(database_url)
    with FaultProxy(parts.hostname or "127.0.0.1", parts.port or 5432) as proxy:
        yield proxy


def test_persister_holds_events_through_a_postgres_outage(
    start_pipeline: StartPipeline, database_url: str, stream_prefix: str, pg_proxy: FaultProxy
) -> None:
    parts = urlsplit(database_url)
    proxied = parts._replace(netloc=f"{parts.username}@127.0.0.1:{pg_proxy.port}").geturl()
    key, agent = new_agent("pg")
    # A counted retry would dead-letter almost at once with 2 deliveries.
    with start_pipeline(
        env={"SMOLTBOT_BUS_MAX_DELIVERIES": "2"},
        overrides={"persister": {"DATABASE_URL": proxied}},
    ) as stack:
        pg_proxy.set_mode("cut")
        gateway = stack.url("gateway")
        with ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(lambda n: post_message(gateway, key, f"hi {n}"), range(40)))
        assert [status for status, _ in results] == [200] * 40
        poll(
            lambda: httpx.get(f"{stack.url('persister')}/health/ready").status_code == 503,
            timeout_s=30,
        )
        time.sleep(5)  # several claim intervals and min-idle periods pass during the outage
        assert dead_letters(stream_prefix) == 0
        assert stack.procs["persister"].poll() is None  # still running, not crash-looping

        pg_proxy.set_mode("pass")
        poll(lambda: counts(database_url, agent) == (40, 40, 40), timeout_s=120)
        assert dead_letters(stream_prefix) == 0
