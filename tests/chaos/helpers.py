"""Shared pieces of the chaos suite: fast reclaim settings, the pipeline, fresh agents, row
counts, dead letters and the landed-exactly-once check."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Protocol
from uuid import uuid4

import httpx
import psycopg
import redis
from smoltbot_contracts.ids import agent_hash, agent_id
from smoltbot_testing.env import REDIS_URL
from smoltbot_testing.procs import ServiceSet, base_env

from tests.conftest import ADMIN_TOKEN, poll

# Take over a dead consumer's entries within seconds instead of a minute.
FAST_RECLAIM = {
    "SMOLTBOT_BUS_MIN_IDLE_MS": "1500",
    "SMOLTBOT_BUS_CLAIM_INTERVAL_S": "0.3",
    "SMOLTBOT_BUS_BLOCK_MS": "200",
    "SMOLTBOT_ANALYZER_TIMEOUT_MS": "400",  # rules analysis is instant; keeps 3x under min-idle
}


def new_agent(label: str) -> tuple[str, str]:
    """A fresh API key (``sk-<label>-<random>``) and the agent id the gateway derives from it."""
    key = f"sk-{label}-{uuid4().hex}"
    return key, agent_id(agent_hash(key))


def counts(database_url: str, agent: str) -> tuple[int, int, int]:
    """(exchanges, traces, checkpoints) rows of one agent."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            """SELECT (SELECT count(*) FROM exchanges WHERE agent_id = %(a)s),
                      (SELECT count(*) FROM traces WHERE agent_id = %(a)s),
                      (SELECT count(*) FROM integrity_checkpoints WHERE agent_id = %(a)s)""",
            {"a": agent},
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def dead_letters(prefix: str) -> int:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        return sum(int(client.xlen(k)) for k in client.scan_iter(match=f"{prefix}dlq:*"))
    finally:
        client.close()


def assert_landed_once(
    database_url: str, prefix: str, agent: str, expected: tuple[int, int, int]
) -> None:
    """``agent``'s rows reach ``expected`` (exchanges, traces, checkpoints), are still exactly
    that once any straggling redelivery could have landed, and nothing was dead-lettered."""
    poll(lambda: counts(database_url, agent) == expected, timeout_s=120)
    time.sleep(2.0)
    assert counts(database_url, agent) == expected
    assert dead_letters(prefix) == 0


PIPELINE = ("persister", "verifier", "observer", "gateway")


@contextmanager
def pipeline(
    *,
    database_url: str,
    prefix: str,
    upstream_url: str,
    log_dir: Path,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, dict[str, str]] | None = None,
) -> Iterator[ServiceSet]:
    """Gateway, observer, verifier and persister as separate processes with fast reclaim;
    ``env`` applies to all of them, ``overrides`` to single services (e.g. a proxied URL)."""
    base = base_env(
        redis_url=REDIS_URL,
        database_url=database_url,
        prefix=prefix,
        admin_token=ADMIN_TOKEN,
        upstream_url=upstream_url,
    )
    base.update(FAST_RECLAIM)
    base.update(env or {})
    stack = ServiceSet(env=base, log_dir=log_dir)
    stack.overrides.update(overrides or {})
    try:
        for service in PIPELINE:
            stack.start(service)
        yield stack
    finally:
        stack.stop_all()


class StartPipeline(Protocol):
    """The ``start_pipeline`` fixture: ``pipeline`` with this test's database, prefix, fake
    upstream and log folder already given."""

    def __call__(self, **kwargs: Any) -> AbstractContextManager[ServiceSet]: ...


def post_message(
    gateway: str, key: str, text: str, *, stream: bool = False, max_tokens: int = 256
) -> tuple[int, float]:
    """One Anthropic Messages call through the gateway: (status, seconds)."""
    body: dict[str, object] = {
        "model": "claude-chaos",
        "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": text}],
    }
    if stream:
        body["stream"] = True
    started = time.perf_counter()
    with httpx.Client(timeout=30) as client:
        resp = client.post(
            f"{gateway}/anthropic/v1/messages",
            json=body,
            headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
        )
    return resp.status_code, time.perf_counter() - started
