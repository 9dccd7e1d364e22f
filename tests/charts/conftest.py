"""Fixtures for the Helm chart tests: the charts built offline into a temporary copy, rendered
with Helm's own engine (helm-python-sdk) once per scenario.

The source tree is never written to: ``charts/`` is copied (without any packaged dependencies a
developer may have built in place) and ``charts/build.py`` resolves the ``file://`` dependencies
in the copy, in order, without network.
"""

from __future__ import annotations

import functools
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import helm_python
import kubernetes_validate.utils
import pytest

from tests.charts.chartkit import (
    CHARTS,
    NAMESPACE,
    RELEASE,
    SCENARIOS,
    Rendered,
    load_module,
    scenario_values,
)


@pytest.fixture(scope="session")
def umbrella(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The umbrella chart with every dependency built, in a temporary copy of charts/."""
    root = tmp_path_factory.mktemp("charts") / "charts"
    shutil.copytree(
        CHARTS,
        root,
        ignore=shutil.ignore_patterns("*.tgz", "Chart.lock", "__pycache__", "dist"),
    )
    build = load_module(root / "build.py", "smoltbot_charts_build")
    return Path(build.build(root))


@pytest.fixture(scope="session")
def render(umbrella: Path) -> Callable[..., Rendered]:
    """``render(values)``: a fresh Chart per call (Helm prunes disabled subcharts in place)."""

    def _render(values: dict[str, Any] | None = None, *, name: str = RELEASE) -> Rendered:
        chart = helm_python.Chart.load(umbrella)
        try:
            return Rendered(chart.render(values or {}, name=name, namespace=NAMESPACE))
        finally:
            chart.close()

    return _render


@pytest.fixture(scope="session")
def scenarios(render: Callable[..., Rendered]) -> dict[str, Rendered]:
    """Every ci/*-values.yaml scenario rendered once."""
    return {name: render(scenario_values(name)) for name in SCENARIOS}


@pytest.fixture(scope="session", autouse=True)
def _schemas_read_once() -> Iterator[None]:
    """kubernetes-validate re-reads and re-parses a 1.3 MB definitions file on every call; the
    files never change, so each is read once (same schemas, same checks, ~8x faster)."""
    original = kubernetes_validate.utils.schema_contents
    kubernetes_validate.utils.schema_contents = functools.lru_cache(maxsize=None)(original)
    try:
        yield
    finally:
        kubernetes_validate.utils.schema_contents = original
