"""`make test-deploy`: the images, run as compose.yaml runs them, trace one real SDK call.

podman-compose starts compose.yaml with the overrides for this machine: external.yaml (the
machine's Redis and PostgreSQL are the "external" ones, since their ports are taken: a private
database and a unique stream prefix), host-network.yaml (no bridge networking here; every service
on a free port) and fake-upstream.env (the fake-upstream profile). The migrate and event-key
one-shots run first; then one official anthropic SDK call goes through the gateway container and
the api container must serve its trace and checkpoint, with the body sealed on the bus by the
generated event key. Everything is removed afterwards: containers, volumes, database, keys.

Needs the images (`make images`); skipped unless SMOLTBOT_TEST_DEPLOY=1 (set by the target).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from uuid import uuid4

import pytest
from smoltbot_testing.env import REDIS_URL
from smoltbot_testing.keys import delete_prefix_sync, unique_prefix
from smoltbot_testing.net import free_port, wait_for_http
from smoltbot_testing.pg import temporary_database
from smoltbot_testing.procs import PORT_VARS

from deploy.dev.smoke import one_traced_call
from deploy.images import build

pytestmark = [
    pytest.mark.skipif(
        os.environ.get("SMOLTBOT_TEST_DEPLOY") != "1",
        reason="starts containers from the images: run by `make test-deploy`",
    ),
    pytest.mark.timeout(900),
]

ROOT = Path(__file__).resolve().parents[2]
FILES = ("compose.yaml", "deploy/compose/external.yaml", "deploy/compose/host-network.yaml")
ADMIN_TOKEN = "deploy-admin-token-0123456789"
ONE_SHOTS = ("event-key", "migrate")


@dataclass
class Stack:
    project: str
    env: dict[str, str]
    ports: dict[str, int]
    prefix: str

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def compose(self, *args: str, timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
        podman_compose = shutil.which("podman-compose")
        assert podman_compose, "podman-compose is not installed (dev dependency)"
        files = [arg for f in FILES for arg in ("-f", str(ROOT / f))]
        env_file = str(ROOT / "deploy" / "compose" / "fake-upstream.env")
        return subprocess.run(
            [podman_compose, "-p", self.project, "--env-file", env_file, *files, *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )

    def containers(self) -> list[dict[str, object]]:
        listed = build.podman(
            "ps",
            "-a",
            "--format",
            "json",
            "--filter",
            f"label=io.podman.compose.project={self.project}",
            capture=True,
        )
        result: list[dict[str, object]] = json.loads(listed.stdout or "[]")
        return result

    def exit_code(self, service: str) -> int:
        name = f"{self.project}_{service}_1"
        out = build.podman("inspect", name, "--format", "{{.State.ExitCode}}", capture=True)
        return int(out.stdout.strip())

    def logs(self) -> str:
        return self.compose("logs", timeout_s=60).stdout[-12000:]


def stack_env(
    database_url: str, prefix: str, ports: dict[str, int], fake_port: int
) -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "SMOLTBOT_IMAGE_REGISTRY", "SMOLTBOT_VERSION")
    env = {k: v for k, v in build.podman_env().items() if k in keep or k == "CONTAINERS_CONF"}
    fake = f"http://127.0.0.1:{fake_port}"
    env.update(
        {
            "EXTERNAL_REDIS_URL": REDIS_URL,
            "EXTERNAL_DATABASE_URL": database_url,
            "SMOLTBOT_STREAM_PREFIX": prefix,
            "SMOLTBOT_ADMIN_TOKEN": ADMIN_TOKEN,
            "SMOLTBOT_FAKE_UPSTREAM_PORT": str(fake_port),
            "SMOLTBOT_UPSTREAM_ANTHROPIC_URL": fake,
            "SMOLTBOT_UPSTREAM_OPENAI_URL": fake,
            "SMOLTBOT_UPSTREAM_GEMINI_URL": fake,
            **{var: str(ports[service]) for service, var in PORT_VARS.items()},
        }
    )
    return env


@pytest.fixture
def stack() -> Iterator[Stack]:
    missing = [
        build.image_name(s) for s in build.IMAGES if not build.image_exists(build.image_name(s))
    ]
    if missing:
        pytest.fail(f"images missing, run `make images` first: {', '.join(missing)}")
    prefix = unique_prefix()
    ports = {service: free_port() for service in PORT_VARS}
    fake_port = free_port()
    with temporary_database("deploy") as database_url:
        running = Stack(
            project=f"smoltbot-deploy-{uuid4().hex[:8]}",
            env=stack_env(database_url, prefix, ports, fake_port),
            ports=ports,
            prefix=prefix,
        )
        try:
            up = running.compose("up", "-d")
            assert up.returncode == 0, f"{up.stdout[-4000:]}\n{up.stderr[-4000:]}"
            try:
                for service in PORT_VARS:
                    wait_for_http(f"{running.url(service)}/health/ready", timeout_s=120)
                wait_for_http(f"http://127.0.0.1:{fake_port}/__fake__/health", timeout_s=60)
            except TimeoutError as exc:
                raise AssertionError(f"{exc}\n{running.logs()}") from None
            yield running
        finally:
            down = running.compose("down", "-v", "-t", "30")
            delete_prefix_sync(prefix)
            assert down.returncode == 0, down.stderr[-4000:]
            assert running.containers() == []
            volumes = build.podman("volume", "ls", "-q", capture=True).stdout.split()
            assert [v for v in volumes if v.startswith(running.project)] == []


def test_one_sdk_call_is_traced_through_the_containers(stack: Stack) -> None:
    for service in ONE_SHOTS:
        assert stack.exit_code(service) == 0, stack.logs()
    started = time.monotonic()
    try:
        result = one_traced_call(
            stack.url("gateway"),
            stack.url("api"),
            ADMIN_TOKEN,
            redis_url=REDIS_URL,
            prefix=stack.prefix,
        )
    except Exception as exc:
        raise AssertionError(f"{type(exc).__name__}: {exc}\n{stack.logs()}") from None
    print(f"{result} ({time.monotonic() - started:.1f} s)")
    # Every service container ran its image's entrypoint under tini as a non-root user.
    for service in PORT_VARS:
        name = f"{stack.project}_{service}_1"
        user = build.podman("exec", name, "id", "-u", capture=True).stdout.strip()
        assert user == "10001", (service, user)
        pid1 = build.podman("exec", name, "cat", "/proc/1/comm", capture=True).stdout.strip()
        assert pid1 == "tini", (service, pid1)
        health = build.podman("healthcheck", "run", name, check=False, capture=True)
        assert health.returncode == 0, (service, health.stdout, health.stderr)
