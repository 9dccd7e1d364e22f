"""What the observability tests read: the dashboards, the rule files and the metrics the code
exports (from the package catalogues, as tests/test_metrics_catalogue.py reads them)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.test_metrics_catalogue import registered

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD_DIR = GRAFANA / "dashboards"
PROMETHEUS = ROOT / "deploy" / "prometheus"
RULES = PROMETHEUS / "smoltbot-rules.yaml"
RULE_TESTS = PROMETHEUS / "smoltbot-rules.test.yaml"
PROMETHEUS_CONFIG = PROMETHEUS / "prometheus.yml"
PROMETHEUS_RULE = PROMETHEUS / "prometheusrule.yaml"
OPERATIONS = ROOT / "docs" / "operations.md"

# Labels Prometheus adds to every scraped series (the target's), beside the metric's own.
TARGET_LABELS = frozenset({"job", "instance"})


@dataclass(frozen=True)
class Series:
    """One series name a query can select: a counter, a gauge or a histogram's part."""

    name: str
    family: str
    kind: str  # counter, gauge, bucket, sum, count, recorded
    labels: frozenset[str]


@cache
def exported() -> dict[str, Series]:
    """Every series name the services expose, with its labels (target labels included), plus
    Prometheus's own ``up``."""
    out: dict[str, Series] = {
        "up": Series("up", "up", "gauge", TARGET_LABELS),
    }
    for name, (kind, labels) in registered().items():
        own = frozenset(labels) | TARGET_LABELS
        if kind == "histogram":
            out[f"{name}_bucket"] = Series(f"{name}_bucket", name, "bucket", own | {"le"})
            out[f"{name}_sum"] = Series(f"{name}_sum", name, "sum", own)
            out[f"{name}_count"] = Series(f"{name}_count", name, "count", own)
        else:
            out[name] = Series(name, name, kind, own)
    return out


def load_module(path: Path) -> ModuleType:
    """Import a script of deploy/ (not a package) by its path."""
    name = f"_deploy_{path.parent.name}_{path.stem}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def dashboards() -> dict[str, dict[str, Any]]:
    paths = sorted(DASHBOARD_DIR.glob("*.json"))
    assert paths, f"no dashboards in {DASHBOARD_DIR}"
    return {path.name: json.loads(path.read_text()) for path in paths}


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, those nested in collapsed rows included."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def dashboard_queries() -> list[tuple[str, str]]:
    """``(where, expr)`` of every Prometheus query in the dashboards."""
    out = []
    for file, dashboard in dashboards().items():
        for panel in panels(dashboard):
            for target in panel.get("targets", []):
                where = f"{file} panel {panel['id']} {panel.get('title')!r} {target.get('refId')}"
                out.append((where, target["expr"]))
        for variable in dashboard.get("templating", {}).get("list", []):
            if variable.get("type") == "query":
                query = variable["query"]
                text = query["query"] if isinstance(query, dict) else query
                out.append((f"{file} variable {variable['name']}", text))
    return out


def rule_groups(path: Path = RULES) -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = yaml.safe_load(path.read_text())["groups"]
    return groups


def rules() -> list[dict[str, Any]]:
    return [rule for group in rule_groups() for rule in group["rules"]]


def alerts() -> list[dict[str, Any]]:
    return [rule for rule in rules() if "alert" in rule]


def rule_queries() -> list[tuple[str, str]]:
    return [(f"rule {rule.get('alert') or rule.get('record')}", rule["expr"]) for rule in rules()]


def promtool_or_skip() -> str:
    """The promtool binary; installs Debian's prometheus package (as root) when it is missing,
    and skips only when that is impossible (no apt, not root, registry unreachable)."""
    found = shutil.which("promtool")
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        pytest.skip("promtool is missing and `apt-get install prometheus` needs apt-get as root")
    env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    install = [apt, "install", "-y", "-q", "--no-install-recommends", "prometheus"]
    result = subprocess.run(install, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:  # an empty or old package list: refresh it once
        subprocess.run([apt, "update", "-q"], capture_output=True, env=env, check=False)
        result = subprocess.run(install, capture_output=True, text=True, env=env, check=False)
    found = shutil.which("promtool")
    if result.returncode != 0 or found is None:
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        pytest.skip(f"apt-get install prometheus failed (apt unreachable?): {' | '.join(tail)}")
    return found


def run_promtool(promtool: str, *args: str | Path, cwd: Path | None = None) -> str:
    """Run promtool; fail with its output when it exits non-zero."""
    result = subprocess.run(
        [promtool, *map(str, args)], capture_output=True, text=True, cwd=cwd, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"promtool {' '.join(map(str, args))} failed:\n{output}"
    return output
