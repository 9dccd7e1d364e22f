"""The smoltbot chart rendered by Helm's own engine for every ci/*-values.yaml scenario: strict
lint, Kubernetes schema validation for 1.27-1.31, and what matters about the objects.

Objects whose kinds have no schema in kubernetes-validate (KEDA ScaledObject, Prometheus
Operator ServiceMonitor) are checked field by field instead.
"""

from __future__ import annotations

import base64
import re
from typing import Any
from urllib.parse import urlsplit

import helm_python
import kubernetes_validate
import msgspec
import pytest
from smoltbot_api.settings import ApiSettings
from smoltbot_config import load_settings
from smoltbot_gateway.settings import GatewaySettings
from smoltbot_notifier.settings import NotifierSettings
from smoltbot_observer.settings import ObserverSettings
from smoltbot_persister.settings import PersisterSettings
from smoltbot_verifier.settings import VerifierSettings

from tests.charts.chartkit import (
    KUBE_VERSIONS,
    NAMESPACE,
    RELEASE,
    SCENARIOS,
    SERVICES,
    Rendered,
    analyzer_port,
    container,
    egress_ports,
    pod_env,
    scenario_values,
)

SETTINGS: dict[str, type[msgspec.Struct]] = {
    "gateway": GatewaySettings,
    "observer": ObserverSettings,
    "verifier": VerifierSettings,
    "persister": PersisterSettings,
    "api": ApiSettings,
    "notifier": NotifierSettings,
}
# The consumer groups and streams the workers read (services/*/worker.py, notifier __main__).
CONSUMERS = {
    "observer": ("observer", {"exchanges:priority", "exchanges"}),
    "verifier": ("verifier", {"traces:priority", "traces"}),
    "persister": ("persister", {"verdicts", "agents", "control"}),
    "notifier": ("notifier", {"verdicts", "control"}),
}
HTTP_SERVICES = {"gateway", "api"}
NO_SCHEMA = {"ScaledObject", "ServiceMonitor"}

scenario_param = pytest.mark.parametrize("scenario", SCENARIOS)


def enabled_services(scenario: str) -> set[str]:
    values = scenario_values(scenario)
    return {s for s in SERVICES if values.get(s, {}).get("enabled", True)}


def values_of(scenario: str, service: str) -> dict[str, Any]:
    return scenario_values(scenario).get(service, {})


def pod_specs(r: Rendered) -> list[tuple[str, dict[str, Any]]]:
    """``(owner, pod spec)`` of every workload that runs pods."""
    out = []
    for d in r.docs:
        name = f"{d['kind']}/{d['metadata']['name']}"
        if d["kind"] in ("Deployment", "StatefulSet", "Job"):
            out.append((name, d["spec"]["template"]["spec"]))
        elif d["kind"] == "Pod":
            out.append((name, d["spec"]))
    return out


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


# ---------------------------------------------------------------------------------------------
# Helm's engine and Kubernetes' schemas


@scenario_param
@pytest.mark.parametrize("kube", KUBE_VERSIONS)
def test_strict_lint(umbrella, scenario, kube):
    report = helm_python.lint(
        umbrella, scenario_values(scenario), strict=True, kube_version=f"v{kube}"
    )
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["errors"] == [], report
    assert problems == [], report


@scenario_param
def test_every_manifest_valid_for_each_kubernetes_version(scenarios, scenario):
    r = scenarios[scenario]
    checked = 0
    for doc in r.docs:
        if doc["kind"] in NO_SCHEMA:
            continue  # no bundled schema: asserted field by field below
        for kube in KUBE_VERSIONS:
            kubernetes_validate.validate(doc, kube, strict=True)
        checked += 1
    assert checked >= 20


@scenario_param
def test_objects_are_namespaced_and_labelled(scenarios, scenario):
    for doc in scenarios[scenario].docs:
        meta = doc["metadata"]
        assert meta["namespace"] == NAMESPACE, doc["kind"]
        assert meta["labels"]["app.kubernetes.io/instance"] == RELEASE
        assert meta["labels"]["app.kubernetes.io/part-of"] == "smoltbot"
        assert len(meta["name"]) <= 63


# ---------------------------------------------------------------------------------------------
# One Deployment per service, each scalable on its own


@scenario_param
def test_each_service_is_its_own_deployment(scenarios, scenario):
    r = scenarios[scenario]
    deployments = r.deployments()
    assert set(deployments) == enabled_services(scenario)
    pods = {svc: d["spec"]["template"]["metadata"]["labels"] for svc, d in deployments.items()}
    for svc, dep in deployments.items():
        selector = dep["spec"]["selector"]["matchLabels"]
        # Its selector picks its own pods and no other service's: scaling one scales only it.
        assert [s for s, labels in pods.items() if selects(selector, labels)] == [svc]
        assert container(dep)["name"] == svc
        assert container(dep)["image"].split("/")[-1].startswith(f"smoltbot-{svc}")
        # Its own Service, selecting only its pods, on the port that serves it.
        service = r.get("Service", dep["metadata"]["name"])
        assert [
            s for s, labels in pods.items() if selects(service["spec"]["selector"], labels)
        ] == [svc]
        assert service["spec"]["ports"][0]["targetPort"] == "http"
        # Its own PDB, never blocking a drain on its own.
        pdb = r.find("PodDisruptionBudget", dep["metadata"]["name"])
        if pdb is not None:
            assert pdb["spec"]["selector"]["matchLabels"] == selector
            assert pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


@scenario_param
def test_probes_point_at_the_port_that_serves_them(scenarios, scenario):
    r = scenarios[scenario]
    for svc, dep in r.deployments().items():
        c = container(dep)
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        env = pod_env(r, dep)
        port_var = f"SMOLTBOT_{svc.upper()}_PORT"
        # The process listens where the probes knock: SMOLTBOT_<SERVICE>_PORT == containerPort.
        assert int(env[port_var]) == ports["http"], svc
        for probe, path in (
            ("startupProbe", "/health/startup"),
            ("readinessProbe", "/health/ready"),
            ("livenessProbe", "/health/live"),
        ):
            get = c[probe]["httpGet"]
            assert get["path"] == path, (svc, probe)
            assert get["port"] in ports, (svc, probe)
        # Services wait for dependencies with 503: the startup budget is minutes, not seconds.
        startup = c["startupProbe"]
        assert startup["periodSeconds"] * startup["failureThreshold"] >= 300
        assert c["livenessProbe"]["timeoutSeconds"] >= 1


@scenario_param
def test_environment_is_what_the_services_read(scenarios, scenario):
    """Every variable the chart sets is a field of the service's settings class and parses."""
    r = scenarios[scenario]
    for svc, dep in r.deployments().items():
        cls = SETTINGS[svc]
        env = pod_env(r, dep)
        known = {f.encode_name for f in msgspec.structs.fields(cls)}
        assert set(env) <= known, (svc, set(env) - known)
        settings = load_settings(cls, env)  # raises SettingsError naming every bad variable
        assert settings.port == container(dep)["ports"][0]["containerPort"]
        assert settings.consumer_name == "smoltbot-pod-0"
        assert settings.stream_prefix == scenario_values(scenario).get("global", {}).get(
            "config", {}
        ).get("SMOLTBOT_STREAM_PREFIX", "smoltbot:")


# ---------------------------------------------------------------------------------------------
# Nobody runs as root


@scenario_param
def test_nothing_runs_as_root(scenarios, scenario):
    specs = pod_specs(scenarios[scenario])
    assert specs
    for owner, spec in specs:
        pod_sc = spec.get("securityContext", {})
        assert pod_sc.get("runAsNonRoot") is True, owner
        assert pod_sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", owner
        assert spec.get("automountServiceAccountToken") is False, owner
        for c in spec["containers"] + spec.get("initContainers", []):
            sc = c["securityContext"]
            uid = sc.get("runAsUser", pod_sc.get("runAsUser"))
            assert isinstance(uid, int), owner
            assert uid > 0, owner
            assert sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True, owner
            assert sc["allowPrivilegeEscalation"] is False, owner
            assert sc["privileged"] is False, owner
            assert sc["readOnlyRootFilesystem"] is True, owner
            assert sc["capabilities"]["drop"] == ["ALL"], owner
            assert not sc["capabilities"].get("add"), owner
            # Resources bounded, images pinned.
            assert c["resources"]["requests"], owner
            assert c["resources"]["limits"], owner
            image = c["image"]
            assert "@sha256:" in image or re.search(r":[\w][\w.-]*$", image.split("/")[-1]), owner
            assert not image.endswith(":latest"), owner


@scenario_param
def test_writable_paths_are_volumes(scenarios, scenario):
    r = scenarios[scenario]
    for svc, dep in r.deployments().items():
        spec = dep["spec"]["template"]["spec"]
        mounts = {m["mountPath"]: m["name"] for m in container(dep)["volumeMounts"]}
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert "/tmp" in mounts
        assert "emptyDir" in volumes[mounts["/tmp"]]
        if svc == "gateway":
            spool = pod_env(r, dep)["SMOLTBOT_SPOOL_DIR"]
            assert spool.startswith("/")
            assert spool in mounts
            volume = volumes[mounts[spool]]
            assert (
                "emptyDir" in volume or "ephemeral" in volume or "persistentVolumeClaim" in volume
            )


# ---------------------------------------------------------------------------------------------
# Shutdown


@scenario_param
def test_gateway_drains_before_it_is_killed(scenarios, scenario):
    gateway = scenarios[scenario].deployments().get("gateway")
    if gateway is None:
        pytest.skip("no gateway in this scenario")
    spec = gateway["spec"]["template"]["spec"]
    grace = spec["terminationGracePeriodSeconds"]
    assert grace >= 120
    command = container(gateway)["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    assert 0 < int(command[1]) < grace


@scenario_param
def test_workers_have_time_to_ack_the_batch_in_hand(scenarios, scenario):
    r = scenarios[scenario]
    for svc, dep in r.deployments().items():
        drain = float(pod_env(r, dep).get("SMOLTBOT_DRAIN_TIMEOUT_S", 25))
        assert dep["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > drain, svc


# ---------------------------------------------------------------------------------------------
# Autoscaling: exactly one owner of the replica count


@scenario_param
def test_autoscaling_has_exactly_one_owner(scenarios, scenario):
    r = scenarios[scenario]
    values = scenario_values(scenario)
    deployments = r.deployments()
    hpas = list(r.of_kind("HorizontalPodAutoscaler"))
    scaled = list(r.of_kind("ScaledObject"))
    names = {d["metadata"]["name"] for d in deployments.values()}
    for obj in hpas + scaled:
        assert obj["spec"]["scaleTargetRef"]["name"] in names
    for svc, dep in deployments.items():
        name = dep["metadata"]["name"]
        owners = [o for o in hpas + scaled if o["spec"]["scaleTargetRef"]["name"] == name]
        autoscaling = values.get(svc, {}).get("autoscaling", {})
        if autoscaling.get("enabled"):
            assert len(owners) == 1, (svc, [o["kind"] for o in owners])
            assert "replicas" not in dep["spec"], svc
            mode = autoscaling.get("mode", "hpa" if svc in HTTP_SERVICES else "keda")
            assert (
                owners[0]["kind"]
                == {"hpa": "HorizontalPodAutoscaler", "keda": "ScaledObject"}[mode]
            )
        else:
            assert owners == [], svc
            assert dep["spec"]["replicas"] >= 1, svc


@scenario_param
def test_hpa_fields(scenarios, scenario):
    for hpa in scenarios[scenario].of_kind("HorizontalPodAutoscaler"):
        spec = hpa["spec"]
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert spec["scaleTargetRef"]["kind"] == "Deployment"
        assert 1 <= spec["minReplicas"] <= spec["maxReplicas"]
        cpu = [m for m in spec["metrics"] if m["resource"]["name"] == "cpu"]
        assert cpu
        assert cpu[0]["resource"]["target"]["type"] == "Utilization"


@scenario_param
def test_scaledobjects_scale_on_consumer_group_lag(scenarios, scenario):
    r = scenarios[scenario]
    prefix = (
        scenario_values(scenario)
        .get("global", {})
        .get("config", {})
        .get("SMOLTBOT_STREAM_PREFIX", "smoltbot:")
    )
    by_name = {d["metadata"]["name"]: svc for svc, d in r.deployments().items()}
    for so in r.of_kind("ScaledObject"):
        assert so["apiVersion"] == "keda.sh/v1alpha1"
        spec = so["spec"]
        target = spec["scaleTargetRef"]
        assert target["apiVersion"] == "apps/v1"
        assert target["kind"] == "Deployment"
        svc = by_name[target["name"]]
        assert svc in CONSUMERS, f"{svc} has no consumer group to scale on"
        group, streams = CONSUMERS[svc]
        assert isinstance(spec["minReplicaCount"], int)
        assert spec["minReplicaCount"] >= 0
        assert spec["maxReplicaCount"] >= max(1, spec["minReplicaCount"])
        assert spec["pollingInterval"] >= 1
        assert spec["cooldownPeriod"] >= 0
        if "fallback" in spec:
            assert spec["fallback"]["replicas"] >= 1
            assert spec["fallback"]["failureThreshold"] >= 1
        triggers = spec["triggers"]
        assert {t["metadata"]["stream"] for t in triggers} == {prefix + s for s in streams}
        assert len(triggers) == len(streams)
        for t in triggers:
            meta = t["metadata"]
            assert t["type"] == "redis-streams"
            assert meta["consumerGroup"] == group
            # lagCount mode (XINFO GROUPS lag), never the pending-list or length modes.
            assert "pendingEntriesCount" not in meta
            assert "streamLength" not in meta
            assert re.fullmatch(r"[1-9][0-9]*", meta["lagCount"])
            assert re.fullmatch(r"[0-9]+", meta["activationLagCount"])
            assert re.fullmatch(r"[^:/ ]+:[0-9]+", meta["address"])
            assert meta["enableTLS"] in ("true", "false")
            assert re.fullmatch(r"[0-9]+", meta["databaseIndex"])
            # KEDA only reads string metadata.
            assert all(isinstance(v, str) for v in meta.values())


def test_keda_address_follows_the_redis_in_use(scenarios):
    """In-cluster: the Service by namespace (KEDA runs elsewhere); external: host, port, db, TLS."""
    in_cluster = scenarios["keda"].of_kind("ScaledObject")
    assert {t["metadata"]["address"] for so in in_cluster for t in so["spec"]["triggers"]} == {
        f"{RELEASE}-redis.{NAMESPACE}.svc:6379"
    }
    external = scenarios["external-services"].get("ScaledObject", f"{RELEASE}-verifier")
    url = urlsplit(scenario_values("external-services")["global"]["redis"]["url"])
    for t in external["spec"]["triggers"]:
        assert t["metadata"]["address"] == url.netloc
        assert t["metadata"]["databaseIndex"] == url.path.strip("/")
        assert t["metadata"]["enableTLS"] == "true"
    given = scenarios["existing-secret"].get("ScaledObject", "tracing-observer")
    for t in given["spec"]["triggers"]:
        assert t["metadata"]["address"] == "redis-master.data.svc:6379"
        assert t["authenticationRef"] == {"name": "smoltbot-redis-auth"}


def test_servicemonitors_scrape_each_service_on_its_port(scenarios):
    r = scenarios["keda"]
    monitors = r.of_kind("ServiceMonitor")
    assert len(monitors) == len(r.deployments())
    for sm in monitors:
        assert sm["apiVersion"] == "monitoring.coreos.com/v1"
        assert sm["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        spec = sm["spec"]
        assert spec["namespaceSelector"] == {"matchNames": [NAMESPACE]}
        services = [
            s
            for s in r.of_kind("Service")
            if selects(spec["selector"]["matchLabels"], s["metadata"]["labels"])
        ]
        assert len(services) == 1
        (endpoint,) = spec["endpoints"]
        assert endpoint["port"] in {p["name"] for p in services[0]["spec"]["ports"]}
        assert endpoint["path"] == "/metrics"
        assert endpoint["scheme"] == "http"
        assert re.fullmatch(r"[0-9]+s", endpoint["interval"])
    assert scenarios["default"].of_kind("ServiceMonitor") == []


# ---------------------------------------------------------------------------------------------
# Migrations: a hook that must succeed before new pods roll


@scenario_param
def test_migrate_hook_runs_before_new_pods(scenarios, scenario):
    r = scenarios[scenario]
    values = scenario_values(scenario).get("global", {})
    in_cluster_pg = values.get("postgresql", {}).get("inCluster", True)
    job = r.get("Job", [j["metadata"]["name"] for j in r.of_kind("Job")][0])
    ann = job["metadata"]["annotations"]
    hooks = ann["helm.sh/hook"].split(",")
    # pre-upgrade always: new pods never roll onto an unmigrated schema. pre-install when the
    # database exists before the release; the in-cluster one does not, so post-install there.
    assert "pre-upgrade" in hooks
    assert hooks == (
        ["post-install", "pre-upgrade"] if in_cluster_pg else ["pre-install", "pre-upgrade"]
    )
    assert set(ann["helm.sh/hook-delete-policy"].split(",")) == {
        "before-hook-creation",
        "hook-succeeded",
    }
    weight = int(ann["helm.sh/hook-weight"])
    spec = job["spec"]
    assert spec["backoffLimit"] >= 1
    assert spec["activeDeadlineSeconds"] >= 60
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    (c,) = pod["containers"]
    assert c["command"] == ["smoltbot"]
    assert c["args"][0] == "migrate"
    assert "smoltbot-cli" in c["image"]
    (env,) = c["env"]
    assert env["name"] == "DATABASE_URL"
    secret_name = env["valueFrom"]["secretKeyRef"]["name"]
    existing = values.get("secrets", {}).get("existingSecret")
    if existing:
        assert secret_name == existing
    secret = r.find("Secret", secret_name)
    if secret is not None and "helm.sh/hook" in secret["metadata"].get("annotations", {}):
        # A pre-install hook cannot read the release's own Secret (not created yet): its hook
        # Secret comes first (lower weight) in the same hook events.
        s_ann = secret["metadata"]["annotations"]
        assert s_ann["helm.sh/hook"] == ann["helm.sh/hook"]
        assert int(s_ann["helm.sh/hook-weight"]) < weight
        assert "DATABASE_URL" in secret["data"]
    elif secret is not None:
        assert "pre-install" not in hooks  # a release object only exists for post-install


# ---------------------------------------------------------------------------------------------
# Secrets and checksums


def test_chart_secret_generates_a_valid_event_key(scenarios):
    r = scenarios["default"]
    secret = r.get("Secret", f"{RELEASE}-secrets")
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert set(data) == {
        "REDIS_URL",
        "DATABASE_URL",
        "SMOLTBOT_ADMIN_TOKEN",
        "SMOLTBOT_EVENT_KEY",
        "POSTGRES_PASSWORD",
    }
    assert len(base64.b64decode(data["SMOLTBOT_EVENT_KEY"], validate=True)) == 32
    assert len(data["SMOLTBOT_ADMIN_TOKEN"]) >= 16
    assert data["REDIS_URL"] == f"redis://{RELEASE}-redis:6379/0"
    db = urlsplit(data["DATABASE_URL"])
    assert db.password == data["POSTGRES_PASSWORD"]
    assert db.hostname == f"{RELEASE}-postgresql"
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    # What the services accept (the same check the process runs at start).
    load_settings(
        GatewaySettings,
        {"SMOLTBOT_EVENT_KEY": data["SMOLTBOT_EVENT_KEY"], "REDIS_URL": data["REDIS_URL"]},
    )


def test_given_secrets_are_used_verbatim(scenarios):
    secret = scenarios["external-services"].get("Secret", f"{RELEASE}-secrets")
    given = scenario_values("external-services")["global"]
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert data["SMOLTBOT_EVENT_KEY"] == given["secrets"]["eventKey"]
    assert data["SMOLTBOT_EVENT_KEYS_RETIRED"] == given["secrets"]["eventKeysRetired"]
    assert data["SMOLTBOT_ADMIN_TOKEN"] == given["secrets"]["adminToken"]
    assert data["REDIS_URL"] == given["redis"]["url"]
    assert data["DATABASE_URL"] == given["postgresql"]["url"]
    assert "POSTGRES_PASSWORD" not in data
    analyzer = scenario_values("external-services")["verifier"]["analyzer"]
    assert data["SMOLTBOT_ANALYZER_API_KEY"] == analyzer["apiKey"]


def test_existing_secret_replaces_the_chart_secret(scenarios):
    r = scenarios["existing-secret"]
    assert r.of_kind("Secret") == []
    refs = {
        item["valueFrom"]["secretKeyRef"]["name"]
        for _, spec in pod_specs(r)
        for c in spec["containers"]
        for item in c.get("env", [])
        if "secretKeyRef" in item.get("valueFrom", {})
    }
    assert refs == {"smoltbot-credentials"}
    # The verifier's analysis key too, under the name that Secret gives it.
    (key,) = [
        item["valueFrom"]["secretKeyRef"]["key"]
        for item in r.deployments()["verifier"]["spec"]["template"]["spec"]["containers"][0]["env"]
        if item["name"] == "SMOLTBOT_ANALYZER_API_KEY"
    ]
    assert key == "ANTHROPIC_API_KEY"


def test_checksums_roll_exactly_the_pods_whose_config_changed(render, scenarios):
    before = {
        s: d["spec"]["template"]["metadata"]["annotations"]
        for s, d in scenarios["default"].deployments().items()
    }
    for pod_annotations in before.values():
        assert re.fullmatch(r"[0-9a-f]{64}", pod_annotations["checksum/config"])
        assert re.fullmatch(r"[0-9a-f]{64}", pod_annotations["checksum/secret"])
    after = {
        s: d["spec"]["template"]["metadata"]["annotations"]
        for s, d in render({"verifier": {"config": {"SMOLTBOT_VERIFIER_BATCH_SIZE": 10}}})
        .deployments()
        .items()
    }
    changed = {s for s in before if before[s]["checksum/config"] != after[s]["checksum/config"]}
    assert changed == {"verifier"}
    rotated = render(
        {"global": {"secrets": {"adminToken": "a-new-admin-token-0123"}}}
    ).deployments()
    assert all(
        rotated[s]["spec"]["template"]["metadata"]["annotations"]["checksum/secret"]
        != before[s]["checksum/secret"]
        for s in before
    )
    # Nothing else moves: the same values render the same checksums (generated secrets included).
    again = scenarios["default"].deployments()
    assert all(again[s]["spec"]["template"]["metadata"]["annotations"] == before[s] for s in before)
    assert (
        render({}).deployments()["gateway"]["spec"]["template"]["metadata"]["annotations"]
        == before["gateway"]
    )


# ---------------------------------------------------------------------------------------------
# NetworkPolicy: default deny, then exactly what each service needs


def admits(rule: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether an ingress rule lets in a pod of this namespace with ``labels``."""
    if "from" not in rule:
        return True
    for peer in rule["from"]:
        if "ipBlock" in peer:
            continue
        ns = peer.get("namespaceSelector")
        same_ns = (
            ns is None
            or ns == {}
            or ns.get("matchLabels") == {"kubernetes.io/metadata.name": NAMESPACE}
        )
        pods = peer.get("podSelector", {}).get("matchLabels", {})
        if same_ns and selects(pods, labels):
            return True
    return False


@scenario_param
def test_network_policies(scenarios, scenario):
    r = scenarios[scenario]
    values = scenario_values(scenario).get("global", {})
    if not values.get("networkPolicy", {}).get("enabled", True):
        assert r.of_kind("NetworkPolicy") == []
        return
    policies = r.of_kind("NetworkPolicy")
    deny = r.get("NetworkPolicy", f"{RELEASE}-default-deny")["spec"]
    assert deny["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in deny
    assert "egress" not in deny
    redis_port = (
        6379
        if values.get("redis", {}).get("inCluster", True)
        else values["redis"].get("port", 6379)
    )
    pg_port = (
        5432
        if values.get("postgresql", {}).get("inCluster", True)
        else values["postgresql"].get("port", 5432)
    )
    for svc, dep in r.deployments().items():
        labels = dep["spec"]["template"]["metadata"]["labels"]
        assert selects(deny["podSelector"]["matchLabels"], labels)
        own = [p for p in policies if p["metadata"]["name"] == dep["metadata"]["name"]]
        assert len(own) == 1
        assert selects(own[0]["spec"]["podSelector"]["matchLabels"], labels)
        spec = own[0]["spec"]
        (ingress,) = spec["ingress"]
        assert ingress["ports"] == [{"port": "http", "protocol": "TCP"}]
        assert "http" in {p["name"] for p in container(dep)["ports"]}
        if svc not in HTTP_SERVICES:
            assert ingress["from"], f"{svc}: probes/metrics only from the cluster"
        own_ingress = values_of(scenario, svc).get("networkPolicy", {}).get("ingressFrom")
        if svc in HTTP_SERVICES and not own_ingress:
            assert "from" not in ingress, f"{svc}: agents and the ingress controller reach it"
        for test_pod in r.of_kind("Pod"):  # `helm test` must still get through
            assert admits(ingress, test_pod["metadata"]["labels"]), svc
        # Egress: exactly DNS, Redis, and what the service calls (no extraEgress in the scenarios).
        wanted = {53, redis_port}
        if svc in {"persister", "api"}:
            wanted.add(pg_port)
        if svc in {"gateway", "notifier"}:
            wanted.add(443)
        if svc == "verifier" and (port := analyzer_port(values_of(scenario, svc))):
            wanted.add(port)
        assert egress_ports(own[0]) == wanted, svc
    # Every pod of the release is covered by the default deny.
    for d in r.docs:
        if d["kind"] in ("Deployment", "StatefulSet", "Job"):
            assert selects(
                deny["podSelector"]["matchLabels"], d["spec"]["template"]["metadata"]["labels"]
            ), d["metadata"]["name"]
    migrate = r.find("NetworkPolicy", f"{RELEASE}-migrate")
    if migrate is not None:
        assert egress_ports(migrate) == {53, pg_port}


# ---------------------------------------------------------------------------------------------
# Ingress, helm test, notes


@scenario_param
def test_ingress_targets_existing_service_ports_with_tls(scenarios, scenario):
    r = scenarios[scenario]
    for ing in r.of_kind("Ingress"):
        spec = ing["spec"]
        (rule,) = spec["rules"]
        assert spec["tls"][0]["hosts"] == [rule["host"]]
        assert spec["tls"][0]["secretName"]
        backend = rule["http"]["paths"][0]["backend"]["service"]
        service = r.get("Service", backend["name"])
        assert backend["port"]["number"] in {p["port"] for p in service["spec"]["ports"]}
        assert service["metadata"]["labels"]["app.kubernetes.io/component"] in HTTP_SERVICES


@scenario_param
def test_helm_test_pod_checks_every_service(scenarios, scenario):
    r = scenarios[scenario]
    pods = r.of_kind("Pod")
    if not pods:
        assert scenario_values(scenario).get("tests", {}).get("enabled") is False
        return
    (pod,) = pods
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    script = pod["spec"]["containers"][0]["args"][0]
    urls = re.findall(r"check (http://\S+)", script)
    services = {
        s["metadata"]["name"]: {p["port"] for p in s["spec"]["ports"]} for s in r.of_kind("Service")
    }
    for url in urls:
        parts = urlsplit(url)
        name, namespace, _ = parts.hostname.split(".", 2)
        assert namespace == NAMESPACE, url
        assert parts.port in services[name], url
        assert parts.path in ("/health/ready", "/health/live")
    ready = [urlsplit(u).hostname or "" for u in urls if u.endswith("/health/ready")]
    checked = {host.split(".")[0] for host in ready}
    assert checked == {d["metadata"]["name"] for d in r.of_kind("Deployment")}
    assert {f"{RELEASE}-gateway", f"{RELEASE}-api"} <= checked


@scenario_param
def test_notes_render(scenarios, scenario):
    notes = scenarios[scenario].notes
    assert "helm test" in notes
    assert "SMOLTBOT_ADMIN_TOKEN" in notes
