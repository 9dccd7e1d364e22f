"""The verifier's conscience analysis in the chart (`verifier.analyzer`): SMOLTBOT_ANALYZER_* in
its ConfigMap, the key only through a secretKeyRef (the chart's Secret or one of yours), and
NetworkPolicy egress to the analysis server's port and nowhere else. One render per backend, each
linted and validated for Kubernetes 1.27-1.31; the values the chart refuses are
tests/charts/invalid/analyzer-*.yaml (run by test_chart_values.py)."""

from __future__ import annotations

import base64
from typing import Any

import helm_python
import kubernetes_validate
import pytest
from smoltbot_config import load_settings
from smoltbot_verifier.settings import VerifierSettings

from tests.charts.chartkit import (
    FAKE_SECRETS,
    KUBE_VERSIONS,
    RELEASE,
    Rendered,
    analyzer_port,
    container,
    pod_env,
)

KEY = "sk-ant-chart-test-key-0123456789"
KEY_VAR = "SMOLTBOT_ANALYZER_API_KEY"
IN_CLUSTER_LLM = [
    {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "llm"}},
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "vllm"}},
    }
]
# The default `global.networkPolicy.httpsTo` (charts/smoltbot/values.yaml).
HTTPS_TO = [
    {"ipBlock": {"cidr": "0.0.0.0/0", "except": ["169.254.169.254/32"]}},
    {"ipBlock": {"cidr": "::/0"}},
]
BACKENDS: dict[str, dict[str, Any]] = {
    "rules": {},
    "openai": {
        "analyzer": {
            "backend": "openai",
            "baseUrl": "http://vllm.llm.svc:8000/v1",
            "model": "Qwen/Qwen2.5-7B-Instruct",
        },
        "networkPolicy": {"analyzerEgress": IN_CLUSTER_LLM},
    },
    "anthropic-chart-secret": {"analyzer": {"backend": "anthropic", "apiKey": KEY}},
    "anthropic-existing-secret": {
        "analyzer": {
            "backend": "anthropic",
            "existingSecret": "llm-keys",
            "existingSecretKey": "ANTHROPIC_API_KEY",
        }
    },
    "hybrid": {
        "analyzer": {
            "backend": "hybrid",
            "baseUrl": "https://analyze.example.com:8443",
            "apiKey": KEY,
        }
    },
}
# Where each render's verifier must read its key: (Secret, key), None for none.
KEY_REFS = {
    "rules": None,
    "openai": None,
    "anthropic-chart-secret": (f"{RELEASE}-secrets", KEY_VAR),
    "anthropic-existing-secret": ("llm-keys", "ANTHROPIC_API_KEY"),
    "hybrid": (f"{RELEASE}-secrets", KEY_VAR),
}
NO_SCHEMA = {"ScaledObject", "ServiceMonitor"}

backend_param = pytest.mark.parametrize("name", list(BACKENDS))


@pytest.fixture(scope="module")
def analyzed(render) -> dict[str, Rendered]:
    return {name: render({"verifier": values}) for name, values in BACKENDS.items()}


def verifier(r: Rendered) -> dict[str, Any]:
    return r.deployments()["verifier"]


def env_items(deployment: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in container(deployment).get("env", [])}


def analyzer_values(name: str) -> dict[str, Any]:
    return BACKENDS[name].get("analyzer", {})


# ---------------------------------------------------------------------------------------------
# Helm's engine and Kubernetes' schemas


@backend_param
def test_strict_lint(umbrella, name):
    for kube in KUBE_VERSIONS:
        report = helm_python.lint(
            umbrella, {"verifier": BACKENDS[name]}, strict=True, kube_version=f"v{kube}"
        )
        assert report["errors"] == [], report
        assert [m for m in report["messages"] if m["severity"] >= 2] == [], report


@backend_param
def test_every_manifest_valid_for_each_kubernetes_version(analyzed, name):
    for doc in analyzed[name].docs:
        if doc["kind"] in NO_SCHEMA:
            continue
        for kube in KUBE_VERSIONS:
            kubernetes_validate.validate(doc, kube, strict=True)


def test_verifier_chart_lints_alone_with_an_llm_backend(umbrella):
    chart = umbrella.parent / "services" / "verifier"
    report = helm_python.lint(chart, BACKENDS["openai"], strict=True, kube_version="v1.27.0")
    assert report["errors"] == [], report
    assert [m for m in report["messages"] if m["severity"] >= 2] == [], report


# ---------------------------------------------------------------------------------------------
# The environment: what the verifier reads, and the key only by reference


@backend_param
def test_verifier_starts_with_the_rendered_environment(analyzed, name):
    """The settings class accepts it: the same checks (key, base URL, model, never the gateway)
    the verifier runs at start, where a failure is exit 2."""
    r = analyzed[name]
    env = pod_env(r, verifier(r))
    settings = load_settings(VerifierSettings, env)
    a = analyzer_values(name)
    assert settings.analyzer_backend == a.get("backend", "rules")
    assert settings.analyzer_base_url == a.get("baseUrl", "")
    assert settings.analyzer_model == a.get("model", "")
    ref = KEY_REFS[name]
    assert settings.analyzer_key == (FAKE_SECRETS[ref[1]] if ref else "")
    # Never the alias: existingSecretKey maps any key name onto SMOLTBOT_ANALYZER_API_KEY.
    assert "ANTHROPIC_API_KEY" not in env


def test_rules_renders_no_analysis_setting(analyzed):
    """The default verifier is what it was before the LLM backends: nothing SMOLTBOT_ANALYZER_*,
    no key, no Secret entry."""
    r = analyzed["rules"]
    config = r.get("ConfigMap", f"{RELEASE}-verifier")["data"]
    assert not {k for k in config if k.startswith("SMOLTBOT_ANALYZER_")}
    assert KEY_VAR not in env_items(verifier(r))
    assert KEY_VAR not in r.get("Secret", f"{RELEASE}-secrets")["data"]


@backend_param
def test_the_key_is_only_a_secret_key_ref(analyzed, name):
    r = analyzed[name]
    items = env_items(verifier(r))
    ref = KEY_REFS[name]
    if ref is None:
        assert KEY_VAR not in items
    else:
        assert items[KEY_VAR] == {
            "name": KEY_VAR,
            "valueFrom": {"secretKeyRef": {"name": ref[0], "key": ref[1]}},
        }
    # The ConfigMap has the backend, base URL and model as given, and nothing else of analysis.
    a = analyzer_values(name)
    wanted = {
        var: a[key]
        for var, key in (
            ("SMOLTBOT_ANALYZER_BACKEND", "backend"),
            ("SMOLTBOT_ANALYZER_BASE_URL", "baseUrl"),
            ("SMOLTBOT_ANALYZER_MODEL", "model"),
        )
        if a.get(key) and a.get("backend", "rules") != "rules"
    }
    config = r.get("ConfigMap", f"{RELEASE}-verifier")["data"]
    assert {k: v for k, v in config.items() if k.startswith("SMOLTBOT_ANALYZER_")} == wanted
    # No ConfigMap, no Deployment holds the key or names it as a plain value.
    for cm in r.of_kind("ConfigMap"):
        assert KEY_VAR not in cm.get("data", {}), cm["metadata"]["name"]
        assert all(KEY not in str(v) for v in cm.get("data", {}).values()), cm["metadata"]["name"]
    for svc, dep in r.deployments().items():
        assert KEY not in str(dep), svc
        if svc != "verifier":
            assert KEY_VAR not in env_items(dep), svc
    assert KEY not in r.notes
    if name != "rules":
        assert f"the {analyzer_values(name)['backend']} backend" in r.notes


@backend_param
def test_the_chart_secret_holds_the_key_only_when_given(analyzed, name):
    secret = analyzed[name].get("Secret", f"{RELEASE}-secrets")
    given = analyzer_values(name).get("apiKey")
    if given:
        assert base64.b64decode(secret["data"][KEY_VAR]).decode() == given
        assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    else:
        assert KEY_VAR not in secret["data"]


def test_a_rules_verifier_ignores_the_llm_values(render, analyzed):
    """backend rules with a URL, model and key given (staged for later): the pod, its ConfigMap
    and its NetworkPolicy are the default ones; only the Secret keeps the key."""
    staged = render({"verifier": {"analyzer": {**analyzer_values("hybrid"), "backend": "rules"}}})
    default = analyzed["rules"]
    name = f"{RELEASE}-verifier"
    for kind in ("Deployment", "ConfigMap", "NetworkPolicy"):
        assert staged.get(kind, name) == default.get(kind, name), kind
    data = staged.get("Secret", f"{RELEASE}-secrets")["data"]
    assert base64.b64decode(data[KEY_VAR]).decode() == KEY


def test_no_verifier_no_key(render):
    r = render({"verifier": {"enabled": False, **BACKENDS["anthropic-chart-secret"]}})
    assert "verifier" not in r.deployments()
    assert KEY_VAR not in r.get("Secret", f"{RELEASE}-secrets")["data"]
    assert "analyses with" not in r.notes


def test_a_new_key_rolls_only_the_verifier(render, analyzed):
    before = analyzed["anthropic-chart-secret"].deployments()
    after = render(
        {"verifier": {"analyzer": {"backend": "anthropic", "apiKey": KEY + "-rotated"}}}
    ).deployments()
    for svc in before:
        old = before[svc]["spec"]["template"]["metadata"]["annotations"]
        new = after[svc]["spec"]["template"]["metadata"]["annotations"]
        assert old["checksum/config"] == new["checksum/config"], svc
        assert (old["checksum/secret"] != new["checksum/secret"]) == (svc == "verifier"), svc


# ---------------------------------------------------------------------------------------------
# NetworkPolicy: the analysis server's port, nothing more


@backend_param
def test_egress_to_the_analysis_server_only(analyzed, name):
    r = analyzed[name]
    policy = r.get("NetworkPolicy", f"{RELEASE}-verifier")["spec"]
    rules = policy["egress"]
    base = analyzed["rules"].get("NetworkPolicy", f"{RELEASE}-verifier")["spec"]["egress"]
    port = analyzer_port(BACKENDS[name])
    if port is None:
        assert rules == base
        return
    # DNS and Redis as before, then one rule: the server's port, to analyzerEgress or httpsTo.
    assert rules[: len(base)] == base
    (extra,) = rules[len(base) :]
    assert extra["ports"] == [{"port": port, "protocol": "TCP"}]
    own = BACKENDS[name].get("networkPolicy", {}).get("analyzerEgress")
    assert extra["to"] == (own or HTTPS_TO)
    # The other services' policies do not move.
    for other in r.of_kind("NetworkPolicy"):
        if other["metadata"]["name"] != f"{RELEASE}-verifier":
            assert other == analyzed["rules"].get("NetworkPolicy", other["metadata"]["name"])


def test_analysis_ports_follow_the_base_url(render):
    cases = {
        "https://llm.example.com": 443,
        "http://ollama.llm.svc:11434/v1": 11434,
        "http://llm.example.com/v1": 80,
        "https://[2001:db8::1]:9443/v1": 9443,
    }
    for url, port in cases.items():
        values = {"analyzer": {"backend": "openai", "baseUrl": url, "model": "m"}}
        policy = render({"verifier": values}).get("NetworkPolicy", f"{RELEASE}-verifier")
        assert policy["spec"]["egress"][-1]["ports"] == [{"port": port, "protocol": "TCP"}], url


def test_no_policy_no_rule(render):
    r = render(
        {
            "global": {"networkPolicy": {"enabled": False}},
            "verifier": BACKENDS["anthropic-chart-secret"],
        }
    )
    assert r.of_kind("NetworkPolicy") == []
    assert pod_env(r, verifier(r))["SMOLTBOT_ANALYZER_BACKEND"] == "anthropic"
