"""Fixtures for the cross-service tests: private databases and stream prefixes, process stacks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from smoltbot_testing.env import REDIS_URL
from smoltbot_testing.net import free_port, wait_for_http
from smoltbot_testing.pg import temporary_database
from smoltbot_testing.procs import PORT_VARS

ADMIN_TOKEN = "e2e-admin-token-0123456789"


@pytest.fixture
def database_url() -> Iterator[str]:
    """A private, migrated database that is dropped afterwards."""
    with temporary_database("e2e", migrate=True) as url:
        yield url


@pytest.fixture
def stream_prefix(prefix: str) -> str:
    """The plugin's ``prefix`` (keys deleted afterwards) under the name these tests use."""
    return prefix


@dataclass
class Stack:
    """A running `smoltbot up --fake-upstream` with every port private to this test."""

    ports: dict[str, int]
    fake_port: int
    prefix: str
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    @property
    def fake_url(self) -> str:
        return f"http://127.0.0.1:{self.fake_port}"

    def api(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url("api"),
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=10,
        )

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_stack(database_url: str, prefix: str, log_path: Path) -> Stack:
    ports = {service: free_port() for service in PORT_VARS}
    stack = Stack(ports=ports, fake_port=free_port(), prefix=prefix, log_path=log_path)
    env = {
        **os.environ,
        "REDIS_URL": REDIS_URL,
        "DATABASE_URL": database_url,
        "SMOLTBOT_STREAM_PREFIX": prefix,
        "SMOLTBOT_ADMIN_TOKEN": ADMIN_TOKEN,
        "LOG_LEVEL": "info",
    }
    env.update({var: str(ports[svc]) for svc, var in PORT_VARS.items()})
    stack.env = env
    log = log_path.open("wb")
    stack.process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "smoltbot_cli",
            "up",
            "--fake-upstream",
            "--fake-upstream-port",
            str(stack.fake_port),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        for service in PORT_VARS:
            wait_for_http(f"{stack.url(service)}/health/ready", timeout_s=60)
        wait_for_http(f"{stack.fake_url}/__fake__/health", timeout_s=30)
    except TimeoutError:
        stop_stack(stack)
        raise AssertionError(f"stack did not become ready; logs:\n{stack.logs()[-6000:]}") from None
    return stack


def stop_stack(stack: Stack) -> None:
    proc = stack.process
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@pytest.fixture
def stack(database_url: str, stream_prefix: str, tmp_path: Path) -> Iterator[Stack]:
    running = start_stack(database_url, stream_prefix, tmp_path / "stack.log")
    try:
        yield running
    finally:
        stop_stack(running)


def poll(fn, *, timeout_s: float = 30.0, interval_s: float = 0.2):  # type: ignore[no-untyped-def]
    """Call ``fn`` until it returns a truthy value; return it, or fail with the last value."""
    deadline = time.monotonic() + timeout_s
    value = None
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError(f"condition not met within {timeout_s}s (last value: {value!r})")
