"""Fixtures: the fake upstream (thread), real Redis with a unique prefix, a gateway subprocess.

``prefix`` and the shared constants come from ``smoltbot_testing.pytest_plugin``; what is here
serves the module-scoped gateway process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from smoltbot_testing import FakeUpstream, free_port, wait_for_http
from smoltbot_testing.env import REDIS_URL
from smoltbot_testing.keys import delete_prefix_keys, unique_prefix


@pytest.fixture(scope="session")
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL)
    client.ping()
    yield client
    client.close()


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream().in_thread() as server:
        yield server


@dataclass
class GatewayProcess:
    url: str
    prefix: str
    log_path: Path
    proc: subprocess.Popen[bytes]

    @property
    def anthropic_url(self) -> str:
        return f"{self.url}/anthropic"


def gateway_env(port: int, prefix: str, upstream: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMOLTBOT_")}
    env.update(
        {
            "SMOLTBOT_GATEWAY_HOST": "127.0.0.1",
            "SMOLTBOT_GATEWAY_PORT": str(port),
            "SMOLTBOT_UPSTREAM_ANTHROPIC_URL": upstream,
            "SMOLTBOT_STREAM_PREFIX": prefix,
            "REDIS_URL": REDIS_URL,
            "LOG_LEVEL": "debug",
            **extra,
        }
    )
    return env


def spawn_gateway(upstream: str, prefix: str, log_path: Path, **extra: str) -> GatewayProcess:
    """Start ``python -m smoltbot_gateway`` on a free port and wait until it is ready."""
    port = free_port()
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "smoltbot_gateway"],
            env=gateway_env(port, prefix, upstream, **extra),
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/health/ready", timeout_s=20)
    except BaseException:
        stop_gateway(proc)
        raise
    return GatewayProcess(url=url, prefix=prefix, log_path=log_path, proc=proc)


def stop_gateway(proc: subprocess.Popen[bytes]) -> int:
    """SIGTERM, then wait; kill only if it hangs. Returns the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode


class GatewayFactory:
    """Fixture value for tests that need their own gateway process (pytest runs in importlib
    mode, so tests cannot import helpers from conftest)."""

    spawn = staticmethod(spawn_gateway)
    stop = staticmethod(stop_gateway)
    delete_prefix = staticmethod(delete_prefix_keys)


@pytest.fixture(scope="session")
def gateway_factory() -> type[GatewayFactory]:
    return GatewayFactory


@pytest.fixture(scope="module")
def gateway(
    fake: FakeUpstream, redis_client: redis.Redis, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    """``python -m smoltbot_gateway`` (granian) in front of the fake, with its own prefix."""
    prefix = unique_prefix()
    log_path = tmp_path_factory.mktemp("gateway") / "gateway.log"
    process = spawn_gateway(fake.url, prefix, log_path, SMOLTBOT_GATEWAY_MAX_CAPTURED_BYTES="4096")
    try:
        yield process
    finally:
        stop_gateway(process.proc)
        delete_prefix_keys(redis_client, prefix)
