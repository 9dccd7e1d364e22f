"""The chart's rendered pod specs run for real: `podman kube play` of the gateway Deployment (and
the observer's when Redis answers), with the chart's securityContext (UID 10001, read-only root,
no capabilities), volumes, environment and probe paths (/work/shared/containers.md).

Skipped unless podman and the service images exist (`make images`:
localhost/smoltbot-<service>:<appVersion>). Only what podman 4.3 cannot take from a Kubernetes
manifest is changed, each in `for_podman` below; everything else is the rendered Deployment as
is.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from smoltbot_testing.env import REDIS_URL
from smoltbot_testing.keys import delete_prefix_sync, unique_prefix
from smoltbot_testing.net import free_port, wait_for_http

from tests.charts.chartkit import SERVICES, UMBRELLA, Rendered

APP_VERSION = yaml.safe_load((UMBRELLA / "Chart.yaml").read_text())["appVersion"]


def image_exists(service: str) -> bool:
    ref = f"localhost/smoltbot-{service}:{APP_VERSION}"
    return subprocess.run(["podman", "image", "exists", ref], check=False).returncode == 0


def redis_answers() -> bool:
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=1, socket_connect_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


pytestmark = [
    pytest.mark.skipif(shutil.which("podman") is None, reason="podman is not installed"),
    pytest.mark.skipif(
        shutil.which("podman") is not None and not image_exists("gateway"),
        reason=f"no localhost/smoltbot-gateway:{APP_VERSION} image (make images)",
    ),
]


def for_podman(r: Rendered, services: list[str]) -> list[dict[str, Any]]:
    """The services' Deployments and ConfigMaps, adapted only where podman 4.3 falls short:

    - containerPorts become host port mappings, which host networking refuses: dropped, and the
      probes get the port number instead of its name;
    - secretKeyRef reads podman's own secret store (and kube play leaves secrets behind): the
      rendered Secret's values are inlined instead.
    """
    secret = r.get("Secret", next(s["metadata"]["name"] for s in r.of_kind("Secret")))
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    deployments = r.deployments()
    out: list[dict[str, Any]] = []
    for service in services:
        dep = deployments[service]
        (c,) = dep["spec"]["template"]["spec"]["containers"]
        port = c.pop("ports")[0]["containerPort"]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            c[probe]["httpGet"]["port"] = port
        env = []
        for item in c["env"]:
            ref = item.get("valueFrom", {}).get("secretKeyRef")
            if ref is None:
                env.append(item)
            elif ref["key"] in data:
                env.append({"name": item["name"], "value": data[ref["key"]]})
        c["env"] = env
        out += [r.get("ConfigMap", dep["metadata"]["name"]), dep]
    return out


def podman(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["podman", "--runtime", "runc", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_rendered_pods_run_under_podman(render, tmp_path: Path):
    services = ["gateway"]
    if image_exists("observer") and redis_answers():
        services.append("observer")
    ports = {s: free_port() for s in services}
    prefix = unique_prefix()
    release = f"kp{uuid.uuid4().hex[:6]}"
    values: dict[str, Any] = {
        "global": {
            "image": {"registry": "localhost", "pullPolicy": "Never"},
            "redis": {"inCluster": False, "url": REDIS_URL},
            "postgresql": {"inCluster": False, "url": "postgresql://unused@127.0.0.1:5432/unused"},
            "config": {"SMOLTBOT_STREAM_PREFIX": prefix},
            "networkPolicy": {"enabled": False},
            "serviceAccount": {"create": False},
        },
        "migrate": {"enabled": False},
        "tests": {"enabled": False},
        **{s: {"enabled": False} for s in SERVICES if s not in services},
        **{s: {"port": ports[s], "replicaCount": 1} for s in services},
    }
    manifest = tmp_path / "kube.yaml"
    manifest.write_text(yaml.safe_dump_all(for_podman(render(values, name=release), services)))
    conf = tmp_path / "containers.conf"
    conf.write_text("[containers]\ndefault_ulimits = []\n")
    env = {**os.environ, "CONTAINERS_CONF": str(conf)}

    played = podman("kube", "play", "--network", "host", str(manifest), env=env)
    try:
        assert played.returncode == 0, played.stderr
        for service, port in ports.items():
            for path in ("/health/startup", "/health/ready", "/health/live", "/metrics"):
                wait_for_http(f"http://127.0.0.1:{port}{path}", timeout_s=60)
            name = f"{release}-smoltbot-{service}-pod-0-{service}"
            inspected = podman("inspect", name, env=env)
            assert inspected.returncode == 0, inspected.stderr
            (info,) = yaml.safe_load(inspected.stdout)
            assert info["Config"]["User"] == "10001:10001"
            assert info["HostConfig"]["ReadonlyRootfs"] is True
            assert info["EffectiveCaps"] in (None, [])
            assert "no-new-privileges" in info["HostConfig"]["SecurityOpt"]
    finally:
        podman("kube", "down", str(manifest), env=env)
        if "observer" in services:
            delete_prefix_sync(prefix)
