"""The Grafana dashboards in deploy/grafana/dashboards: what deploy/grafana/generate.py writes,
importable anywhere (a ``${datasource}`` variable, no datasource uid written down), every panel
querying Prometheus through that variable, unique ids, a layout that fits the grid, and every
query valid PromQL for promtool. Which metrics and labels the queries use is checked in
test_queries_use_exported_metrics.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.observability.promql import grafana_to_promql
from tests.observability.sources import (
    DASHBOARD_DIR,
    GRAFANA,
    dashboard_queries,
    dashboards,
    exported,
    load_module,
    panels,
    promtool_or_skip,
    run_promtool,
)

DATASOURCE_REF = {"type": "prometheus", "uid": "${datasource}"}
MIN_SCHEMA_VERSION = 36  # Grafana 9: datasource references by uid
# What issue E asked the dashboards to show, as the series that show it.
REQUIRED_SERIES = {
    "gateway latency": "gateway_request_duration_seconds_bucket",
    "gateway overhead": "gateway_overhead_seconds_bucket",
    "requests by provider and status": "gateway_requests_total",
    "gateway refusals": "smoltbot_gateway_refusals_total",
    "bus throughput": "smoltbot_bus_entries_total",
    "persister rows": "smoltbot_persister_rows_written_total",
    "lag": "smoltbot_bus_lag",
    "pending": "smoltbot_bus_pending",
    "oldest pending age": "smoltbot_bus_oldest_pending_age_seconds",
    "spooled": "smoltbot_bus_spooled_total",
    "breaker": "smoltbot_bus_breaker_open",
    "over budget": "smoltbot_bus_over_budget",
    "publisher drops": "smoltbot_bus_publish_dropped_total",
    "spool drops": "smoltbot_bus_spool_dropped_total",
    "verdict mix": "smoltbot_verifier_verdicts_total",
    "analysis failures": "smoltbot_verifier_analysis_failures_total",
    "gate disagreements": "smoltbot_verifier_gate_disagreements_total",
    "api rate": "smoltbot_api_requests_total",
    "api latency": "smoltbot_api_request_duration_seconds_bucket",
}
# Exported metrics deliberately left off the dashboards (none today): a metric added to a
# catalogue gets a panel, or a line here saying why not.
NOT_ON_DASHBOARDS: set[str] = set()

DASHBOARD_FILES = sorted(path.name for path in DASHBOARD_DIR.glob("*.json"))


def walk(node: Any, path: str = "") -> list[tuple[str, Any]]:
    """Every ``(path, value)`` of a JSON document."""
    out = [(path, node)]
    if isinstance(node, dict):
        for key, value in node.items():
            out += walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += walk(value, f"{path}[{i}]")
    return out


def query_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in panels(dashboard) if p["type"] != "row"]


def test_dashboards_are_what_the_generator_writes() -> None:
    generator = load_module(GRAFANA / "generate.py")
    expected = {f"{uid}.json" for uid in generator.DASHBOARDS}
    assert set(DASHBOARD_FILES) == expected
    stale = [
        uid
        for uid in generator.DASHBOARDS
        if (DASHBOARD_DIR / f"{uid}.json").read_text() != generator.render(uid)
    ]
    assert stale == [], "run: uv run python deploy/grafana/generate.py"


@pytest.mark.parametrize("file", DASHBOARD_FILES)
def test_dashboard_is_importable_with_a_datasource_variable(file: str) -> None:
    dashboard = dashboards()[file]
    assert dashboard["schemaVersion"] >= MIN_SCHEMA_VERSION
    assert dashboard["uid"] == Path(file).stem
    assert dashboard["title"]
    assert dashboard.get("id") is None, "an exported id would clash on import"
    assert "__inputs" not in dashboard, "import should need no input: the variable picks"
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    datasource = variables["datasource"]
    assert datasource["type"] == "datasource"
    assert datasource["query"] == "prometheus"
    assert datasource["current"] == {}, "no datasource chosen in advance: Grafana's default"


@pytest.mark.parametrize("file", DASHBOARD_FILES)
def test_no_datasource_is_hard_coded(file: str) -> None:
    refs = [(p, v) for p, v in walk(dashboards()[file]) if p.endswith(".datasource")]
    assert refs
    wrong = [
        (p, v)
        for p, v in refs
        if v != DATASOURCE_REF and v != {"type": "grafana", "uid": "-- Grafana --"}
    ]
    assert wrong == []


@pytest.mark.parametrize("file", DASHBOARD_FILES)
def test_every_panel_queries_prometheus_through_the_variable(file: str) -> None:
    for panel in query_panels(dashboards()[file]):
        name = f"panel {panel['id']} {panel['title']!r}"
        assert panel["datasource"] == DATASOURCE_REF, name
        assert panel["targets"], f"{name} has no query"
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), f"{name}: duplicate refId"
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE_REF, name
            assert target["expr"].strip(), f"{name} {target['refId']}: empty expr"
        assert panel["description"], f"{name}: say what it shows"


@pytest.mark.parametrize("file", DASHBOARD_FILES)
def test_panel_ids_are_unique_and_the_layout_fits(file: str) -> None:
    all_panels = list(panels(dashboards()[file]))
    ids = [p["id"] for p in all_panels]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    taken: set[tuple[int, int]] = set()
    for panel in all_panels:
        pos = panel["gridPos"]
        assert pos["x"] >= 0
        assert pos["w"] > 0
        assert pos["h"] > 0
        assert pos["x"] + pos["w"] <= 24, f"panel {panel['id']} is wider than the grid"
        cells = {
            (x, y)
            for x in range(pos["x"], pos["x"] + pos["w"])
            for y in range(pos["y"], pos["y"] + pos["h"])
        }
        assert not cells & taken, f"panel {panel['id']} overlaps another"
        taken |= cells


def test_dashboard_uids_and_titles_are_unique() -> None:
    boards = dashboards().values()
    assert len({d["uid"] for d in boards}) == len(boards)
    assert len({d["title"] for d in boards}) == len(boards)


def test_rates_use_the_rate_interval_variable() -> None:
    """Fixed windows in rate() break at scrape intervals other than ours."""
    fixed = [
        (where, expr)
        for where, expr in dashboard_queries()
        if "rate(" in expr and "[$__rate_interval]" not in expr and "[$__range]" not in expr
    ]
    assert fixed == []


def test_dashboards_show_what_the_issue_asked_for() -> None:
    text = "\n".join(expr for _, expr in dashboard_queries())
    missing = {what: s for what, s in REQUIRED_SERIES.items() if s not in text}
    assert missing == {}
    for quantile in ("0.5", "0.9", "0.99"):
        assert f"histogram_quantile({quantile}, sum by (le) (rate(gateway_overhead" in text


def test_every_exported_metric_is_on_a_dashboard() -> None:
    text = "\n".join(expr for _, expr in dashboard_queries())
    families = {s.family for s in exported().values()} - {"up"}
    absent = sorted(f for f in families - NOT_ON_DASHBOARDS if f not in text)
    assert absent == [], "add a panel for these (deploy/grafana/generate.py) or list them"


@pytest.mark.timeout(900)  # may install Debian's prometheus package first
def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    """promtool parses each query as a recording rule (Grafana's interval variables replaced)."""
    promtool = promtool_or_skip()
    queries = dashboard_queries()
    rules = [
        {"record": f"dashboard:query_{i}:check", "expr": grafana_to_promql(expr)}
        for i, (_, expr) in enumerate(queries)
    ]
    path = tmp_path / "dashboards.rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    output = run_promtool(promtool, "check", "rules", path)
    assert f"SUCCESS: {len(queries)} rules found" in output


def test_provisioning_examples_point_at_the_dashboards() -> None:
    provider = yaml.safe_load((GRAFANA / "provisioning/dashboards/smoltbot.yaml").read_text())
    assert provider["apiVersion"] == 1
    assert provider["providers"][0]["type"] == "file"
    assert provider["providers"][0]["options"]["path"]
    sources = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yaml").read_text())
    assert [s["type"] for s in sources["datasources"]] == ["prometheus"]
