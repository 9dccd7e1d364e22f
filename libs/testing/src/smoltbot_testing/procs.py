"""Start, kill and restart smoltbot services as separate OS processes for system tests."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from smoltbot_testing.env import REDIS_URL
from smoltbot_testing.net import free_port, wait_for_http

PORT_VARS = {
    "gateway": "SMOLTBOT_GATEWAY_PORT",
    "observer": "SMOLTBOT_OBSERVER_PORT",
    "verifier": "SMOLTBOT_VERIFIER_PORT",
    "persister": "SMOLTBOT_PERSISTER_PORT",
    "notifier": "SMOLTBOT_NOTIFIER_PORT",
    "api": "SMOLTBOT_API_PORT",
}


@dataclass
class ServiceSet:
    """One process per service, each restartable on its own, logs in ``log_dir``."""

    env: dict[str, str]
    log_dir: Path
    ports: dict[str, int] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    overrides: dict[str, dict[str, str]] = field(default_factory=dict)
    generation: dict[str, int] = field(default_factory=dict)

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def start(
        self, service: str, *, wait: bool = True, extra_env: dict[str, str] | None = None
    ) -> None:
        port = self.ports.setdefault(service, free_port())
        gen = self.generation.get(service, 0) + 1
        self.generation[service] = gen
        env = {
            **self.env,
            PORT_VARS[service]: str(port),
            **self.overrides.get(service, {}),
            **(extra_env or {}),
        }
        log = (self.log_dir / f"{service}.{gen}.log").open("wb")
        self.procs[service] = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            [sys.executable, "-m", f"smoltbot_{service}"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        if wait:
            self.wait_ready(service)

    def wait_ready(self, service: str, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            proc = self.procs[service]
            if proc.poll() is not None:
                raise AssertionError(
                    f"{service} exited with {proc.returncode}:\n{self.logs(service)[-4000:]}"
                )
            try:
                wait_for_http(f"{self.url(service)}/health/ready", timeout_s=1.0)
                return
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"{service} not ready:\n{self.logs(service)[-4000:]}"
                    ) from None

    def kill(self, service: str) -> None:
        """SIGKILL: no drain, no ack — the crash the bus must survive."""
        proc = self.procs[service]
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def terminate(self, service: str, timeout_s: float = 60) -> int:
        proc = self.procs[service]
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        return proc.wait(timeout_s)

    def logs(self, service: str) -> str:
        gen = self.generation.get(service, 1)
        return "\n".join(
            (self.log_dir / f"{service}.{g}.log").read_text(errors="replace")
            for g in range(1, gen + 1)
            if (self.log_dir / f"{service}.{g}.log").exists()
        )

    def stop_all(self) -> None:
        for service in ("gateway", "api", "observer", "verifier", "persister", "notifier"):
            proc = self.procs.get(service)
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        for proc in self.procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def run_entrypoint(
    service: str, env: Mapping[str, str], *, timeout_s: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m smoltbot_<service>`` to completion (start-up failures), text output."""
    return subprocess.run(  # noqa: S603 - fixed argv, no shell
        [sys.executable, "-m", f"smoltbot_{service}"],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def base_env(
    *, redis_url: str, database_url: str, prefix: str, admin_token: str, upstream_url: str
) -> dict[str, str]:
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "DATABASE_URL": database_url,
        "SMOLTBOT_STREAM_PREFIX": prefix,
        "SMOLTBOT_ADMIN_TOKEN": admin_token,
        "SMOLTBOT_UPSTREAM_ANTHROPIC_URL": upstream_url,
        "LOG_LEVEL": "info",
        # Test events carry fixed past timestamps: the persister's retention would delete them.
        "SMOLTBOT_RETENTION_DAYS": "0",
    }
    env.pop("SMOLTBOT_CONSUMER_NAME", None)
    return env


@dataclass
class WorkerRun:
    """One ``python -m smoltbot_<service>`` run: its port, then its exit code and output."""

    port: int
    returncode: int | None = None
    output: str = ""


@asynccontextmanager
async def worker_process(
    service: str, *, prefix: str, consumer_name: str, redis_url: str = REDIS_URL
) -> AsyncIterator[WorkerRun]:
    """A bus worker as an OS process on the shared Redis under ``prefix``, ready when entered.

    On exit it gets SIGTERM and is waited for (15 s); ``returncode`` and ``output`` (stdout and
    stderr) are filled in then, for the caller to assert on.
    """
    run = WorkerRun(port=free_port())
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "SMOLTBOT_STREAM_PREFIX": prefix,
        "SMOLTBOT_CONSUMER_NAME": consumer_name,
        PORT_VARS[service]: str(run.port),
        f"SMOLTBOT_{service.upper()}_HOST": "127.0.0.1",
        "SMOLTBOT_RETENTION_DAYS": "0",  # test events carry fixed past timestamps
    }
    proc = subprocess.Popen(  # noqa: S603, ASYNC220 - fixed argv, no shell; the child is the point
        [sys.executable, "-m", f"smoltbot_{service}"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        await asyncio.to_thread(wait_for_http, f"http://127.0.0.1:{run.port}/health/ready")
        yield run
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = await asyncio.to_thread(proc.communicate, timeout=15)
        run.returncode = proc.returncode
        run.output = out.decode(errors="replace")
