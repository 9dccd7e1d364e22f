"""``python -m smoltbot_persister`` as a real OS process against real Redis and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg
import pytest
from smoltbot_contracts.codec import to_fields
from smoltbot_contracts.streams import card_key, stream_key
from smoltbot_testing.env import REDIS_URL
from smoltbot_testing.net import free_port
from smoltbot_testing.procs import run_entrypoint

from services.persister.tests.persister_factories import agent_event, meta, verdict

pytestmark = pytest.mark.e2e


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(extra)
    return env


def test_malformed_database_url_exits_2_with_one_line():
    proc = run_entrypoint("persister", _env(DATABASE_URL="not-a-url"))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "DATABASE_URL" in lines[0]
    assert "not-a-url" not in lines[0]  # values may be secrets: never echoed


def test_missing_database_url_is_named():
    proc = run_entrypoint("persister", _env())
    assert proc.returncode == 2
    assert "DATABASE_URL (required but not set)" in proc.stderr


async def _get(client: httpx.AsyncClient, path: str) -> int:
    try:
        return (await client.get(path)).status_code
    except httpx.TransportError:
        return -1


async def _wait_for(pred, timeout: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await pred()
        if value:
            return value
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _start(port: int, prefix: str, database_url: str, log: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "smoltbot_persister"],
        env=_env(
            DATABASE_URL=database_url,
            REDIS_URL=REDIS_URL,
            SMOLTBOT_STREAM_PREFIX=prefix,
            SMOLTBOT_PERSISTER_PORT=str(port),
            SMOLTBOT_PERSISTER_HOST="127.0.0.1",
            SMOLTBOT_CONSUMER_NAME=f"{prefix}persister-1",
            SMOLTBOT_RETENTION_DAYS="0",  # the events carry a fixed past time (T0)
        ),
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        text=True,
    )


def _stop(proc: subprocess.Popen[str], log: Path) -> tuple[int, str]:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    return proc.returncode, log.read_text()


async def test_unreachable_database_keeps_probes_503_without_crashing(prefix, redis, tmp_path):
    port = free_port()
    log = tmp_path / "persister.log"
    proc = _start(port, prefix, "postgresql://postgres@127.0.0.1:1/nope", log)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:

            async def retrying() -> bool:
                # Our process is past its probe-server start and waiting for PostgreSQL.
                return log.read_text().count("postgres not reachable yet") >= 2

            await _wait_for(retrying, what="postgres retries in the log")
            assert proc.poll() is None, "the process must wait, not exit"
            assert await _get(client, "/health/startup") == 503
            ready = await client.get("/health/ready")
            assert ready.status_code == 503
    finally:
        code, out = _stop(proc, log)
    assert code == 0, out


async def test_consumes_streams_into_postgres_and_drains_on_sigterm(
    clean_db, prefix, redis, tmp_path
):
    port = free_port()
    log = tmp_path / "persister.log"
    proc = _start(port, prefix, clean_db, log)
    agent = agent_event()
    v = verdict(meta())
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:

            async def started() -> bool:
                return await _get(client, "/health/startup") == 200

            await _wait_for(started, what="startup 200")
            ready = await client.get("/health/ready")
            assert ready.status_code == 200
            assert ready.json()["checks"]["postgres"]["ok"] is True

            for _ in range(3):  # the same verdict three times (at-least-once redelivery)
                await redis.xadd(stream_key(prefix, "verdicts"), to_fields(v))
            await redis.xadd(stream_key(prefix, "agents"), to_fields(agent))

            def exchange_count() -> int:
                with psycopg.connect(clean_db) as conn:
                    return conn.execute("SELECT count(*) FROM exchanges").fetchone()[0]

            async def persisted() -> bool:
                return exchange_count() == 1 and bool(
                    await redis.exists(card_key(prefix, agent.agent_id))
                )

            await _wait_for(persisted, what="rows and card cache")

            async def nothing_pending() -> bool:
                info = await redis.xpending(stream_key(prefix, "verdicts"), "persister")
                return info["pending"] == 0

            await _wait_for(nothing_pending, what="all verdicts acked")
            metrics = (await client.get("/metrics")).text
            assert 'smoltbot_persister_rows_written_total{table="exchanges"} 1.0' in metrics
            assert agent.agent_id not in metrics
            assert exchange_count() == 1
    finally:
        code, out = _stop(proc, log)
    assert code == 0, out
