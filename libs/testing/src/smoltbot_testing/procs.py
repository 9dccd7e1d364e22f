"""Start, kill and restart smoltbot services as separate OS processes for system tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

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
    }
    env.pop("SMOLTBOT_CONSUMER_NAME", None)
    return env
