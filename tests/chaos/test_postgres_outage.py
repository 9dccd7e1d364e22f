"""A2: PostgreSQL goes away under a running persister (fault proxy). Events wait in the bus — no
delivery is spent, nothing is dead-lettered — and land exactly once when it comes back."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest
import redis
from smoltbot_contracts.codec import to_fields
from smoltbot_contracts.streams import stream_key
from smoltbot_testing.env import REDIS_URL
from smoltbot_testing.faults import FaultProxy
from smoltbot_testing.procs import ServiceSet, base_env

from services.persister.tests.persister_factories import meta, verdict
from tests.chaos.helpers import (
    FAST_RECLAIM,
    StartPipeline,
    counts,
    dead_letters,
    new_agent,
    post_message,
)
from tests.conftest import ADMIN_TOKEN, poll

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


def _rows(database_url: str, agent: str) -> dict[str, int]:
    with psycopg.connect(database_url) as conn:
        return {
            table: int(row[0])
            for table in CUT_TABLES
            if (
                row := conn.execute(
                    f"SELECT count(*) FROM {table} WHERE agent_id = %s",  # noqa: S608 - fixed names
                    (agent,),
                ).fetchone()
            )
        }


CUT_TABLES = ("exchanges", "traces", "verifications", "integrity_checkpoints")
EVENTS = 1000
CUT_S = 60.0


@pytest.mark.timeout(300)
def test_persister_survives_a_60s_cut_during_1000_events(
    database_url: str, stream_prefix: str, pg_proxy: FaultProxy, tmp_path: Path
) -> None:
    """The persister's PostgreSQL connection is cut for 60 s in the middle of 1,000 verdict
    events: the process never exits (same pid), readiness goes 503 then 200, and afterwards
    every event is a row in each table, exactly once, with nothing dead-lettered. Retention runs
    every few seconds meanwhile and fails during the cut without harm."""
    parts = urlsplit(database_url)
    proxied = parts._replace(netloc=f"{parts.username}@127.0.0.1:{pg_proxy.port}").geturl()
    env = base_env(
        redis_url=REDIS_URL,
        database_url=proxied,
        prefix=stream_prefix,
        admin_token=ADMIN_TOKEN,
        upstream_url="http://127.0.0.1:9",
    )
    env.update(FAST_RECLAIM)
    env.update(
        {
            "SMOLTBOT_BUS_MAX_DELIVERIES": "2",  # a counted retry would dead-letter at once
            "SMOLTBOT_RETENTION_DAYS": "30",  # the events are new: nothing of theirs goes
            "SMOLTBOT_RETENTION_INTERVAL_S": "5",
        }
    )
    key, agent = new_agent("cut")
    at = datetime.now(UTC)
    events = [to_fields(verdict(meta(key, at + timedelta(milliseconds=n)))) for n in range(EVENTS)]
    stream = stream_key(stream_prefix, "verdicts")
    client = redis.Redis.from_url(REDIS_URL)
    stack = ServiceSet(env=env, log_dir=tmp_path)
    try:
        stack.start("persister")
        pid = stack.procs["persister"].pid
        ready = f"{stack.url('persister')}/health/ready"

        def publish(batch: list[dict[Any, Any]]) -> None:
            with client.pipeline(transaction=False) as pipe:
                for fields in batch:
                    pipe.xadd(stream, fields)
                pipe.execute()

        publish(events[:300])
        poll(lambda: _rows(database_url, agent)["exchanges"] > 0, timeout_s=30)
        pg_proxy.set_mode("cut")
        cut_at = time.monotonic()
        publish(events[300:])
        poll(lambda: httpx.get(ready).status_code == 503, timeout_s=30)
        while time.monotonic() - cut_at < CUT_S:
            assert stack.procs["persister"].poll() is None, stack.logs("persister")[-4000:]
            assert dead_letters(stream_prefix) == 0
            time.sleep(2.0)
        landed_during_cut = _rows(database_url, agent)["exchanges"]
        assert landed_during_cut < EVENTS

        pg_proxy.set_mode("pass")
        poll(lambda: httpx.get(ready).status_code == 200, timeout_s=60)
        expected = dict.fromkeys(CUT_TABLES, EVENTS)
        poll(lambda: _rows(database_url, agent) == expected, timeout_s=120)
        time.sleep(2.0)  # any straggling redelivery would have landed by now
        assert _rows(database_url, agent) == expected
        assert dead_letters(stream_prefix) == 0
        proc = stack.procs["persister"]
        assert proc.poll() is None
        assert proc.pid == pid  # the same process throughout: no crash, no restart
        assert "retention run failed" in stack.logs("persister")
    finally:
        stack.stop_all()
        client.close()
