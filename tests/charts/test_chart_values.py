"""Values the chart refuses: values.schema.json (enforced by Helm at render) and the `fail`-based
checks of contradictory values (tests/charts/invalid/*.yaml, each naming the message it expects);
plus the charts' metadata and generated schemas staying in step with the code."""

from __future__ import annotations

from pathlib import Path

import helm_python
import pytest
import yaml

from tests.charts.chartkit import CHARTS, SERVICES, UMBRELLA, load_module

INVALID = sorted((Path(__file__).parent / "invalid").glob("*.yaml"))


def expected_message(path: Path) -> str:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: "), f"{path.name}: first line must be '# expect: <message>'"
    return first.removeprefix("# expect: ")


@pytest.mark.parametrize("path", INVALID, ids=[p.stem for p in INVALID])
def test_contradictory_values_fail_with_their_message(render, path):
    with pytest.raises(helm_python.HelmRenderError) as caught:
        render(yaml.safe_load(path.read_text()))
    assert expected_message(path) in str(caught.value)


# (values, chart whose schema rejects them, JSON pointer named in the error)
SCHEMA_REJECTS = [
    ({"gateway": {"port": "eighty"}}, "gateway", "/port"),
    ({"gateway": {"replicas": 3}}, "gateway", "'replicas' not allowed"),
    ({"gateway": {"config": {"SMOLTBOT_GATEWAY_UPSTREAM_READ_TIMEOUT": 9}}}, "gateway", "/config"),
    ({"gateway": {"config": {"SMOLTBOT_GATEWAY_PORT": 9000}}}, "gateway", "/config"),  # use `port`
    (
        {"gateway": {"config": {"REDIS_URL": "redis://x:6379"}}},
        "gateway",
        "/config",
    ),  # a Secret key
    (
        {"observer": {"config": {"SMOLTBOT_BUS_RETENTION_S": 60}}},
        "observer",
        "/config",
    ),  # global only
    (
        {"verifier": {"config": {"SMOLTBOT_ANALYZER_FAILURE_POLICY": "sometimes"}}},
        "verifier",
        "/config/SMOLTBOT_ANALYZER_FAILURE_POLICY",
    ),
    (
        {"persister": {"config": {"SMOLTBOT_PERSISTER_BATCH_SIZE": 0}}},
        "persister",
        "/config/SMOLTBOT_PERSISTER_BATCH_SIZE",
    ),
    (
        {"gateway": {"terminationGracePeriodSeconds": 30}},
        "gateway",
        "/terminationGracePeriodSeconds",
    ),
    (
        {"gateway": {"securityContext": {"runAsNonRoot": False}}},
        "gateway",
        "/securityContext/runAsNonRoot",
    ),
    ({"api": {"podSecurityContext": {"runAsUser": 0}}}, "api", "/podSecurityContext/runAsUser"),
    ({"observer": {"autoscaling": {"mode": "cpu"}}}, "observer", "/autoscaling/mode"),
    ({"gateway": {"image": {"tag": "latest"}}}, "gateway", "/image/tag"),
    ({"bogus": 1}, "smoltbot", "'bogus' not allowed"),
    ({"global": {"bogus": 1}}, "smoltbot", "/global"),
    ({"global": {"image": {"tag": "latest"}}}, "smoltbot", "/global/image/tag"),
    ({"global": {"secrets": {"eventKey": "not-a-key"}}}, "smoltbot", "/global/secrets/eventKey"),
    ({"global": {"secrets": {"adminToken": "short"}}}, "smoltbot", "/global/secrets/adminToken"),
    ({"global": {"redis": {"url": "http://redis:6379"}}}, "smoltbot", "/global/redis/url"),
    ({"global": {"config": {"LOG_LEVEL": "verbose"}}}, "smoltbot", "/global/config/LOG_LEVEL"),
    (
        {"global": {"config": {"SMOLTBOT_BUS_MAX_BYTES": 1000}}},
        "smoltbot",
        "/global/config/SMOLTBOT_BUS_MAX_BYTES",
    ),
    ({"global": {"config": {"SMOLTBOT_EVENT_KEY": "x"}}}, "smoltbot", "/global/config"),
    # The analysis settings come from `verifier.analyzer`; its key never goes in a ConfigMap.
    (
        {"verifier": {"config": {"SMOLTBOT_ANALYZER_BACKEND": "anthropic"}}},
        "verifier",
        "/config",
    ),
    (
        {"verifier": {"config": {"SMOLTBOT_ANALYZER_BASE_URL": "https://llm.example.com"}}},
        "verifier",
        "/config",
    ),
    ({"verifier": {"config": {"SMOLTBOT_ANALYZER_API_KEY": "sk-x"}}}, "verifier", "/config"),
    ({"verifier": {"config": {"ANTHROPIC_API_KEY": "sk-ant-x"}}}, "verifier", "/config"),
    (
        {"verifier": {"analyzer": {"backend": "gpt"}}},
        "verifier",
        "/analyzer/backend",
    ),
    (
        {"verifier": {"analyzer": {"baseUrl": "ftp://llm.example.com"}}},
        "verifier",
        "/analyzer/baseUrl",
    ),
    (
        {"verifier": {"analyzer": {"apiKey": "sk-ant-key\n"}}},
        "verifier",
        "/analyzer/apiKey",
    ),
    (
        {"verifier": {"analyzer": {"existingSecretKey": "no spaces"}}},
        "verifier",
        "/analyzer/existingSecretKey",
    ),
    (
        {"verifier": {"networkPolicy": {"analyzerEgress": "10.0.0.0/8"}}},
        "verifier",
        "/networkPolicy/analyzerEgress",
    ),
]


@pytest.mark.parametrize(
    ("values", "chart", "where"), SCHEMA_REJECTS, ids=[w for _, _, w in SCHEMA_REJECTS]
)
def test_schema_rejects_bad_values(render, values, chart, where):
    with pytest.raises(helm_python.HelmValuesError) as caught:
        render(values)
    message = str(caught.value)
    assert f"\n{chart}:\n" in f"\n{message}", message
    assert where in message, message


def test_schemas_are_generated_from_the_settings_classes():
    """`uv run python charts/gen_schemas.py` rewrites them; a new setting must reach the chart."""
    gen = load_module(CHARTS / "gen_schemas.py", "smoltbot_charts_gen_schemas")
    stale = [
        str(p.relative_to(CHARTS)) for p, text in gen.schemas().items() if p.read_text() != text
    ]
    assert stale == [], f"out of date, run `uv run python charts/gen_schemas.py`: {stale}"


def test_every_schema_allows_global_enabled_and_the_library():
    gen = load_module(CHARTS / "gen_schemas.py", "smoltbot_charts_gen_schemas")
    for service in SERVICES:
        props = gen.service_schema(service)["properties"]
        assert {"global", "enabled", "smoltbot-lib"} <= set(props)
        assert gen.service_schema(service)["additionalProperties"] is False


def test_chart_metadata_agrees():
    charts = {
        p.parent: yaml.safe_load(p.read_text())
        for p in CHARTS.glob("**/Chart.yaml")
        if "/charts/" not in str(p.relative_to(CHARTS))
    }
    umbrella = charts[UMBRELLA]
    lib = charts[CHARTS / "smoltbot-lib"]
    assert lib["type"] == "library"
    # Every chart carries the umbrella's appVersion: it is the default tag of every image.
    assert {c["appVersion"] for c in charts.values()} == {umbrella["appVersion"]}
    deps = {d["name"]: d for d in umbrella["dependencies"]}
    assert set(deps) == {*SERVICES, "smoltbot-lib"}
    for service in SERVICES:
        chart_dir = CHARTS / "services" / service
        sub = charts[chart_dir]
        assert sub["name"] == service
        assert sub["type"] == "application"
        assert deps[service]["version"] == sub["version"]
        assert deps[service]["condition"] == f"{service}.enabled"
        assert (
            UMBRELLA / deps[service]["repository"].removeprefix("file://")
        ).resolve() == chart_dir
        (lib_dep,) = sub["dependencies"]
        assert lib_dep["name"] == "smoltbot-lib"
        assert lib_dep["version"] == lib["version"]
        assert (
            chart_dir / lib_dep["repository"].removeprefix("file://")
        ).resolve() == CHARTS / "smoltbot-lib"


def test_a_service_can_be_left_out(render):
    r = render({"notifier": {"enabled": False}, "observer": {"enabled": False}})
    assert set(r.deployments()) == {"gateway", "verifier", "persister", "api"}


@pytest.mark.parametrize("service", SERVICES)
def test_service_charts_lint_on_their_own(umbrella, service):
    chart = umbrella.parent / "services" / service
    for values in ({}, {"autoscaling": {"enabled": True}}):
        report = helm_python.lint(chart, values, strict=True, kube_version="v1.27.0")
        assert report["errors"] == [], report
        assert [m for m in report["messages"] if m["severity"] >= 2] == [], report
