"""Plain helpers of the chart tests (imported as ``tests.charts.chartkit``): paths, scenarios,
and :class:`Rendered`, one render's manifests with the lookups the assertions need."""

from __future__ import annotations

import base64
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

REPO = Path(__file__).resolve().parents[2]
CHARTS = REPO / "charts"
UMBRELLA = CHARTS / "smoltbot"
SCENARIOS = sorted(
    p.name.removesuffix("-values.yaml") for p in (UMBRELLA / "ci").glob("*-values.yaml")
)
KUBE_VERSIONS = ("1.27.0", "1.28.0", "1.29.0", "1.30.0", "1.31.0")
SERVICES = ("gateway", "observer", "verifier", "persister", "api", "notifier")
RELEASE = "smoltbot"
NAMESPACE = "smoltbot"
# Fake secret values in the formats the settings classes accept, by the Secret key they are read
# from (the analysis key under both names a Secret of yours may give it).
FAKE_SECRETS = {
    "REDIS_URL": "redis://redis:6379/0",
    "DATABASE_URL": "postgresql://u:p@pg:5432/db",
    "SMOLTBOT_ADMIN_TOKEN": "x" * 32,
    "SMOLTBOT_EVENT_KEY": base64.b64encode(bytes(32)).decode(),
    "SMOLTBOT_EVENT_KEYS_RETIRED": "",
    "SMOLTBOT_ANALYZER_API_KEY": "sk-fake-analysis-key",
    "ANTHROPIC_API_KEY": "sk-ant-fake-analysis-key",
}


def load_module(path: Path, name: str) -> Any:
    """Import a script under charts/ (not a package) by path."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def scenario_values(name: str) -> dict[str, Any]:
    return yaml.safe_load((UMBRELLA / "ci" / f"{name}-values.yaml").read_text()) or {}


@dataclass
class Rendered:
    """One render: every manifest, and lookups the assertions need."""

    files: dict[str, str]
    docs: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        for path, text in sorted(self.files.items()):
            if path.endswith("NOTES.txt"):
                continue
            self.docs.extend(d for d in yaml.safe_load_all(text) if d)

    @property
    def notes(self) -> str:
        return next(t for p, t in self.files.items() if p.endswith("NOTES.txt"))

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.docs if d["kind"] == kind]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        found = [d for d in self.of_kind(kind) if d["metadata"]["name"] == name]
        assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
        return found[0]

    def find(self, kind: str, name: str) -> dict[str, Any] | None:
        found = [d for d in self.of_kind(kind) if d["metadata"]["name"] == name]
        return found[0] if found else None

    def deployments(self) -> dict[str, dict[str, Any]]:
        """``{service: Deployment}`` keyed by the component label."""
        return {
            d["metadata"]["labels"]["app.kubernetes.io/component"]: d
            for d in self.of_kind("Deployment")
        }


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def pod_env(r: Rendered, deployment: dict[str, Any]) -> dict[str, str]:
    """The environment the container would get (ConfigMaps resolved, Secrets faked)."""
    c = container(deployment)
    env: dict[str, str] = {}
    for source in c.get("envFrom", []):
        cm = r.get("ConfigMap", source["configMapRef"]["name"])
        env.update(cm["data"])
    for item in c.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
            continue
        ref = item["valueFrom"]
        if "fieldRef" in ref:
            assert ref["fieldRef"]["fieldPath"] == "metadata.name"
            env[item["name"]] = "smoltbot-pod-0"
        else:
            env[item["name"]] = FAKE_SECRETS[ref["secretKeyRef"]["key"]]
    return env


def egress_ports(policy: dict[str, Any]) -> set[int | str]:
    return {p["port"] for rule in policy["spec"].get("egress", []) for p in rule.get("ports", [])}


def analyzer_port(verifier_values: dict[str, Any]) -> int | None:
    """The port the verifier's NetworkPolicy must open to its analysis server (None: `rules`)."""
    analyzer = verifier_values.get("analyzer", {})
    if analyzer.get("backend", "rules") == "rules":
        return None
    url = urlsplit(analyzer.get("baseUrl") or "https://api.anthropic.com")
    return url.port or (80 if url.scheme == "http" else 443)
