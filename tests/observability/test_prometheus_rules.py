"""The Prometheus rules in deploy/prometheus: valid for promtool, their unit tests passing, every
alert complete (for, severity, summary, description, a runbook_url at an existing section of
docs/operations.md) and covering what issue E asked for; the sample configuration loads them;
the PrometheusRule wrapper holds the same groups. Which metrics and labels the expressions use
is checked in test_queries_use_exported_metrics.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tests.observability.sources import (
    OPERATIONS,
    PROMETHEUS,
    PROMETHEUS_CONFIG,
    PROMETHEUS_RULE,
    RULE_TESTS,
    RULES,
    alerts,
    load_module,
    promtool_or_skip,
    rule_groups,
    rules,
    run_promtool,
)

SEVERITIES = {"warning", "critical"}
# What issue E asked to alert on, by alert name.
REQUIRED_ALERTS = {
    "consumer lag growing": "SmoltbotConsumerLagGrowing",
    "oldest pending age too high": "SmoltbotOldestPendingTooOld",
    "any dead-lettered entries": "SmoltbotDeadLetters",
    "entries lost": "SmoltbotEntriesLost",
    "stale consumer group": "SmoltbotStaleConsumerGroup",
    "breaker open": "SmoltbotRedisBreakerOpen",
    "over budget": "SmoltbotBusOverBudget",
    "spool dropping events": "SmoltbotSpoolDropping",
    "gateway 5xx rate": "SmoltbotGateway5xxHigh",
    "gateway overhead p99": "SmoltbotGatewayOverheadHigh",
    "analysis failures": "SmoltbotAnalysisFailures",
    "persister not writing while verdicts arrive": "SmoltbotPersisterNotWriting",
    "target down": "SmoltbotTargetDown",
}

pytestmark = pytest.mark.timeout(900)  # the first promtool use may install Debian's prometheus


@pytest.fixture(scope="module")
def promtool() -> str:
    return promtool_or_skip()


def github_anchor(heading: str) -> str:
    """The anchor GitHub (and most Markdown renderers) give a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def operations_anchors() -> set[str]:
    return {
        github_anchor(line.lstrip("#"))
        for line in OPERATIONS.read_text().splitlines()
        if line.startswith("#")
    }


def test_promtool_checks_the_rules(promtool: str) -> None:
    output = run_promtool(promtool, "check", "rules", RULES)
    assert f"SUCCESS: {len(rules())} rules found" in output


def test_promtool_unit_tests_of_the_rules_pass(promtool: str) -> None:
    output = run_promtool(promtool, "test", "rules", RULE_TESTS.name, cwd=PROMETHEUS)
    assert "SUCCESS" in output


def test_every_alert_has_a_unit_test_that_fires_it() -> None:
    tested = yaml.safe_load(RULE_TESTS.read_text())
    assert tested["rule_files"] == [RULES.name]
    fired = {
        case["alertname"]
        for test in tested["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    quiet = {
        case["alertname"]
        for test in tested["tests"]
        for case in test.get("alert_rule_test", [])
        if not case.get("exp_alerts")
    }
    names = {alert["alert"] for alert in alerts()}
    assert names - fired == set(), "alerts no unit test sees firing"
    assert names - quiet == set(), "alerts no unit test sees staying quiet"


def test_the_sample_prometheus_config_loads_the_rules(promtool: str) -> None:
    output = run_promtool(promtool, "check", "config", PROMETHEUS_CONFIG)
    assert "SUCCESS: 1 rule files found" in output
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    services = {"gateway", "observer", "verifier", "persister", "api", "notifier"}
    assert jobs == {f"smoltbot-{service}" for service in services}


def test_the_prometheusrule_holds_the_same_groups(promtool: str, tmp_path: Path) -> None:
    generator = load_module(PROMETHEUS / "prometheusrule.py")
    assert PROMETHEUS_RULE.read_text() == generator.render(), (
        "run: uv run python deploy/prometheus/prometheusrule.py"
    )
    resource = yaml.safe_load(PROMETHEUS_RULE.read_text())
    assert resource["apiVersion"] == "monitoring.coreos.com/v1"
    assert resource["kind"] == "PrometheusRule"
    assert resource["metadata"]["name"] == "smoltbot"
    assert resource["spec"]["groups"] == rule_groups()
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(resource["spec"]))
    run_promtool(promtool, "check", "rules", spec)


def test_rule_groups_and_alert_names_are_unique() -> None:
    groups = [group["name"] for group in rule_groups()]
    assert len(groups) == len(set(groups))
    names = [alert["alert"] for alert in alerts()]
    assert len(names) == len(set(names))
    assert all(re.fullmatch(r"Smoltbot[A-Z][A-Za-z0-9]+", name) for name in names)


def test_there_is_a_recording_rule_group() -> None:
    recording = [g for g in rule_groups() if all("record" in r for r in g["rules"])]
    assert recording
    assert all(len(r["record"].split(":")) == 3 for g in recording for r in g["rules"])


@pytest.mark.parametrize("alert", alerts(), ids=lambda alert: alert["alert"])
def test_alert_is_complete(alert: dict[str, object]) -> None:
    assert re.fullmatch(r"\d+[smh]", str(alert.get("for", ""))), "a `for` duration"
    labels = alert["labels"]
    assert isinstance(labels, dict)
    assert labels.get("severity") in SEVERITIES
    annotations = alert["annotations"]
    assert isinstance(annotations, dict)
    assert set(annotations) == {"summary", "description", "runbook_url"}
    assert all(str(value).strip() for value in annotations.values())


@pytest.mark.parametrize("alert", alerts(), ids=lambda alert: alert["alert"])
def test_runbook_url_points_at_a_section_of_operations_md(alert: dict[str, object]) -> None:
    annotations = alert["annotations"]
    assert isinstance(annotations, dict)
    page, _, anchor = str(annotations["runbook_url"]).partition("#")
    assert page == "docs/operations.md"
    assert anchor in operations_anchors(), f"no section #{anchor} in docs/operations.md"


def test_anchor_rule_matches_the_sections_the_issue_named() -> None:
    assert {"when-redis-is-down", "dead-letters", "replay"} <= operations_anchors()


def test_alerts_cover_what_the_issue_asked_for() -> None:
    names = {alert["alert"] for alert in alerts()}
    missing = {what: name for what, name in REQUIRED_ALERTS.items() if name not in names}
    assert missing == {}


def test_the_readme_lists_every_alert() -> None:
    table = {
        line.split("|")[1].strip()
        for line in (PROMETHEUS / "README.md").read_text().splitlines()
        if line.startswith("| Smoltbot")
    }
    assert table == {alert["alert"] for alert in alerts()}
