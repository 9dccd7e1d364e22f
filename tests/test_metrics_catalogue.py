"""Every metric a service registers is documented in docs/metrics.md, and every documented one
is registered, with the same type and labels; our names follow one prefix rule; metric objects
are created only in each package's catalogue module."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "metrics.md"
CATALOGUES = (
    "smoltbot_bus._metrics",
    "smoltbot_gateway.metrics",
    "smoltbot_observer.metrics",
    "smoltbot_verifier.metrics",
    "smoltbot_persister.metrics",
    "smoltbot_api.metrics",
    "smoltbot_notifier.metrics",
)
# Names the reference's dashboards and alerts use: kept verbatim, everything else is smoltbot_*.
REFERENCE_NAMES = {
    "gateway_requests_total",
    "gateway_request_duration_seconds",
    "gateway_overhead_seconds",
}
_ROW = re.compile(r"^\|\s*`(?P<name>[a-z_]+)`\s*\|\s*(?P<type>\w+)\s*\|\s*(?P<labels>[^|]*)\|")
_CREATES_METRIC = re.compile(r"\b(Counter|Gauge|Histogram|Summary)\(")


def registered() -> dict[str, tuple[str, tuple[str, ...]]]:
    """``{exposed name: (type, label names)}`` of every metric of ours in the registry."""
    for module in CATALOGUES:
        importlib.import_module(module)
    out: dict[str, tuple[str, tuple[str, ...]]] = {}
    collectors: dict[Any, Any] = REGISTRY._collector_to_names  # noqa: SLF001 - test only
    for collector in collectors:
        describe = getattr(collector, "describe", None)
        labels = tuple(getattr(collector, "_labelnames", ()))
        for family in describe() if describe else []:
            if family.name.startswith(("python_", "process_")):
                continue
            name = family.name + ("_total" if family.type == "counter" else "")
            out[name] = (family.type, labels)
    return out


def documented() -> dict[str, tuple[str, tuple[str, ...]]]:
    out: dict[str, tuple[str, tuple[str, ...]]] = {}
    for line in DOC.read_text().splitlines():
        match = _ROW.match(line)
        if match is None:
            continue
        labels = tuple(re.findall(r"`([a-z_]+)`", match["labels"]))
        out[match["name"]] = (match["type"], labels)
    return out


def test_every_registered_metric_is_documented_and_every_documented_one_registered() -> None:
    have, doc = registered(), documented()
    assert doc, "docs/metrics.md lists no metrics"
    assert sorted(set(have) - set(doc)) == [], "registered but not in docs/metrics.md"
    assert sorted(set(doc) - set(have)) == [], "in docs/metrics.md but not registered"


def test_documented_type_and_labels_match_the_code() -> None:
    have, doc = registered(), documented()
    wrong = {
        name: (doc[name], have[name]) for name in doc if name in have and doc[name] != have[name]
    }
    assert wrong == {}


@pytest.mark.parametrize("name", sorted(registered()))
def test_one_prefix_rule(name: str) -> None:
    assert name.startswith("smoltbot_") or name in REFERENCE_NAMES


def test_metrics_are_created_only_in_catalogue_modules() -> None:
    offenders = []
    for path in sorted(ROOT.glob("*/**/src/smoltbot_*/**/*.py")):
        if path.name in ("metrics.py", "_metrics.py") or "smoltbot_metrics" in path.parts:
            continue
        if "smoltbot_testing" in path.parts:
            continue
        text = path.read_text()
        if "smoltbot_metrics" in text or "prometheus_client" in text:
            offenders += [
                f"{path.relative_to(ROOT)}:{n}"
                for n, line in enumerate(text.splitlines(), 1)
                if _CREATES_METRIC.search(line)
            ]
    assert offenders == []
