"""Write every smoltbot chart's ``values.schema.json`` from one description.

The keys allowed under ``config`` (per service) and ``global.config`` (shared) are not listed by
hand: they are the environment variables the services' settings classes read
(``smoltbot_config.env_names``), with the constraints msgspec derives from those classes, so a
value the process would reject at start (exit 2) is already rejected by ``helm install``.
``tests/charts`` fails when a committed schema differs from what this script writes.

    uv run python charts/gen_schemas.py          # rewrite the schemas
    uv run python charts/gen_schemas.py --check  # exit 1 when one is out of date
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import msgspec
from smoltbot_api.settings import ApiSettings
from smoltbot_config import BusSettings, env_names
from smoltbot_gateway.settings import GatewaySettings
from smoltbot_notifier.settings import NotifierSettings
from smoltbot_observer.settings import ObserverSettings
from smoltbot_persister.settings import PersisterSettings
from smoltbot_verifier.settings import VerifierSettings

CHARTS = Path(__file__).resolve().parent
DRAFT = "http://json-schema.org/draft-07/schema#"

# name: (settings class, serves HTTP to clients, keeps a spool)
SERVICES: dict[str, tuple[type[msgspec.Struct], bool, bool]] = {
    "gateway": (GatewaySettings, True, True),
    "observer": (ObserverSettings, False, False),
    "verifier": (VerifierSettings, False, False),
    "persister": (PersisterSettings, False, False),
    "api": (ApiSettings, True, False),
    "notifier": (NotifierSettings, False, False),
}

# Set by the chart itself: secrets (from the Secret), identity (from the pod name), the port
# (must equal the containerPort the probes use) and the spool directory (the volume's path).
# The analysis keys are secrets too, never in a ConfigMap: the verifier gets its key through a
# secretKeyRef from `verifier.analyzer` (apiKey or existingSecret); ANTHROPIC_API_KEY, the same
# key under another name, is never needed (existingSecretKey names the key in your Secret).
CHART_MANAGED = frozenset(
    {
        "SMOLTBOT_ANALYZER_API_KEY",
        "ANTHROPIC_API_KEY",
        "REDIS_URL",
        "DATABASE_URL",
        "SMOLTBOT_ADMIN_TOKEN",
        "SMOLTBOT_EVENT_KEY",
        "SMOLTBOT_EVENT_KEYS_RETIRED",
        "SMOLTBOT_CONSUMER_NAME",
        "SMOLTBOT_GATEWAY_INSTANCE",
        "SMOLTBOT_SPOOL_DIR",
    }
)
# Shared settings every service must agree on (stream names, retention, the byte budget): only
# `global.config` may set them.
GLOBAL_ONLY = frozenset(
    {
        "SMOLTBOT_STREAM_PREFIX",
        "SMOLTBOT_BUS_MAX_BYTES",
        "SMOLTBOT_BUS_BODY_RETENTION_S",
        "SMOLTBOT_BUS_RETENTION_S",
        "SMOLTBOT_BUS_STALE_GROUP_S",
        "SMOLTBOT_BUS_TRIM_INTERVAL_S",
    }
)


# Per service: variables the chart renders from dedicated values (validated together at render,
# and the NetworkPolicy follows them), so `config` refuses them. {service: {variable: value path}}
FROM_VALUES: dict[str, dict[str, str]] = {
    "verifier": {
        "SMOLTBOT_ANALYZER_BACKEND": "analyzer.backend",
        "SMOLTBOT_ANALYZER_BASE_URL": "analyzer.baseUrl",
        "SMOLTBOT_ANALYZER_MODEL": "analyzer.model",
    },
}
# An http(s) URL url.Parse reads (optional userinfo, refused at render; host; port; the rest).
HTTP_URL = (
    r"^(https?://([^\s/?#@]+@)?(\[[0-9A-Fa-f:.]+\]|[^\s/?#@:\[\]]+)(:[0-9]{1,5})?([/?#]\S*)?)?$"
)


def port_var(service: str) -> str:
    return f"SMOLTBOT_{service.upper()}_PORT"


# ---------------------------------------------------------------------------------------------
# Building blocks


def obj(properties: dict[str, Any], description: str | None = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object"}
    if description:
        out["description"] = description
    out["additionalProperties"] = False
    out["properties"] = properties
    out.update(extra)
    return out


def arr(items: dict[str, Any] | None = None, description: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "array", "items": items or {"type": "object"}}
    if description:
        out["description"] = description
    return out


def desc(schema: dict[str, Any], text: str) -> dict[str, Any]:
    return {"description": text, **schema}


STR = {"type": "string"}
BOOL = {"type": "boolean"}
OBJECT = {"type": "object"}  # a Kubernetes object passed through (affinity, volume source, ...)
STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
QUANTITY = {"type": ["string", "integer", "number"]}
PORT = {"type": "integer", "minimum": 1, "maximum": 65535}


def int_min(minimum: int) -> dict[str, Any]:
    return {"type": "integer", "minimum": minimum}


NULLABLE_INT = {"type": ["integer", "null"], "minimum": 1}
INT_OR_PERCENT = {"type": ["integer", "string", "null"]}
PULL_POLICY = {"type": "string", "enum": ["", "Always", "IfNotPresent", "Never"]}
NOT_LATEST = {"type": "string", "not": {"const": "latest"}}

RESOURCES = obj(
    {
        "requests": {"type": "object", "additionalProperties": QUANTITY},
        "limits": {"type": "object", "additionalProperties": QUANTITY},
        "claims": arr(),
    },
    "Container resources",
)

# Open objects (any Kubernetes field) with the fields that keep pods unprivileged pinned.
POD_SECURITY_CONTEXT = {
    "type": "object",
    "description": "Pod securityContext merged over the chart's; cannot turn root on",
    "properties": {
        "runAsNonRoot": {"const": True},
        "runAsUser": int_min(1),
        "runAsGroup": int_min(0),
        "fsGroup": int_min(0),
    },
}
CONTAINER_SECURITY_CONTEXT = {
    "type": "object",
    "description": "Container securityContext merged over the chart's; cannot turn root on",
    "properties": {
        "runAsNonRoot": {"const": True},
        "runAsUser": int_min(1),
        "privileged": {"const": False},
        "allowPrivilegeEscalation": {"const": False},
        "readOnlyRootFilesystem": {"const": True},
    },
}


def image(third_party: bool = False) -> dict[str, Any]:
    props: dict[str, Any] = {
        "registry": STR,
        "repository": {"type": "string", "minLength": 1},
        "tag": ({"type": ["string", "number"]} if third_party else NOT_LATEST),
        "pullPolicy": PULL_POLICY,
    }
    if not third_party:
        props["digest"] = {"type": "string", "pattern": "^(sha256:[a-f0-9]{64})?$"}
    return obj(props, "Container image", required=["repository"])


PROBE = obj(
    {
        "initialDelaySeconds": int_min(0),
        "periodSeconds": int_min(1),
        "timeoutSeconds": int_min(1),
        "failureThreshold": int_min(1),
        "successThreshold": int_min(1),
    }
)

PERSISTENCE = obj(
    {"enabled": BOOL, "size": QUANTITY, "storageClass": STR},
    "PersistentVolumeClaim of the StatefulSet",
)


def settings_properties(cls: type[msgspec.Struct]) -> dict[str, dict[str, Any]]:
    """``{variable: JSON schema}`` as msgspec derives it from the settings class."""
    schema = msgspec.json.schema(cls)
    props = schema["$defs"][cls.__name__]["properties"]
    names = set(env_names(cls).values())
    assert set(props) == names, (cls, set(props) ^ names)
    return {name: {k: v for k, v in spec.items() if k != "title"} for name, spec in props.items()}


def config_schema(props: dict[str, dict[str, Any]], allowed: set[str], text: str) -> dict[str, Any]:
    return obj({name: props[name] for name in sorted(allowed)}, text)


# ---------------------------------------------------------------------------------------------
# Service charts


def service_schema(name: str) -> dict[str, Any]:
    cls, public, spool = SERVICES[name]
    settings = settings_properties(cls)
    allowed = (
        set(settings)
        - CHART_MANAGED
        - GLOBAL_ONLY
        - {port_var(name)}
        - set(FROM_VALUES.get(name, {}))
    )

    hpa = obj(
        {
            "targetCPUUtilizationPercentage": int_min(1),
            "targetMemoryUtilizationPercentage": NULLABLE_INT,
            "behavior": OBJECT,
        }
    )
    autoscaling_props: dict[str, Any] = {
        "enabled": BOOL,
        "mode": {"type": "string", "enum": ["hpa", "keda"]},
        "minReplicas": int_min(0),
        "maxReplicas": int_min(1),
        "hpa": hpa,
    }
    if not public:
        autoscaling_props["keda"] = obj(
            {
                "lagCount": int_min(1),
                "activationLagCount": int_min(0),
                "pollingInterval": int_min(1),
                "cooldownPeriod": int_min(0),
                "fallback": {
                    "oneOf": [
                        {"type": "null"},
                        obj(
                            {"failureThreshold": int_min(1), "replicas": int_min(1)},
                            required=["failureThreshold", "replicas"],
                        ),
                    ]
                },
                "behavior": OBJECT,
            }
        )
    network_props: dict[str, Any] = {
        "extraIngress": arr(description="Extra ingress rules"),
        "extraEgress": arr(description="Extra egress rules"),
    }
    if public:
        network_props = {
            "ingressFrom": arr(description="Peers allowed to reach the port (empty: anyone)"),
            **network_props,
        }
    if name == "verifier":
        network_props = {
            "analyzerEgress": arr(
                description="Peers the verifier may reach on the analysis server's port while "
                "analyzer.backend is not rules (empty: global.networkPolicy.httpsTo)"
            ),
            **network_props,
        }

    props: dict[str, Any] = {
        "global": desc(OBJECT, "Set by the umbrella chart and validated by its schema"),
        "enabled": desc(BOOL, "Render this service (the umbrella's dependency condition)"),
        "smoltbot-lib": desc(OBJECT, "The library chart's (empty) values"),
        "image": image(),
        "port": desc(PORT, f"{port_var(name)}, the containerPort and the probes' port"),
        "service": obj(
            {
                "type": {"type": "string", "enum": ["ClusterIP", "NodePort", "LoadBalancer"]},
                "port": {"type": ["integer", "null"], "minimum": 1, "maximum": 65535},
                "annotations": STRING_MAP,
            }
        ),
        "replicaCount": int_min(0),
        "revisionHistoryLimit": int_min(0),
        "strategy": OBJECT,
        "autoscaling": obj(autoscaling_props),
        "config": config_schema(
            settings,
            allowed,
            f"The {name}'s settings by environment variable (docs/operations.md); shared ones "
            f"here override `global.config`",
        ),
        "extraEnv": arr(description="Extra container env entries"),
        "probes": obj({"startup": PROBE, "readiness": PROBE, "liveness": PROBE}),
        "lifecycle": obj({"preStopSleepSeconds": int_min(0)}),
        "terminationGracePeriodSeconds": int_min(120 if name == "gateway" else 1),
        "resources": RESOURCES,
        "podSecurityContext": POD_SECURITY_CONTEXT,
        "securityContext": CONTAINER_SECURITY_CONTEXT,
        "tmpSizeLimit": QUANTITY,
        "podAnnotations": STRING_MAP,
        "podLabels": STRING_MAP,
        "nodeSelector": STRING_MAP,
        "tolerations": arr(),
        "affinity": OBJECT,
        "topologySpreadConstraints": arr(),
        "priorityClassName": STR,
        "podDisruptionBudget": obj(
            {"enabled": BOOL, "minAvailable": INT_OR_PERCENT, "maxUnavailable": INT_OR_PERCENT}
        ),
        "networkPolicy": obj(network_props),
    }
    if name == "verifier":
        props["analyzer"] = analyzer_schema(settings)
    if spool:
        props["spool"] = obj(
            {
                "path": {"type": "string", "pattern": "^/"},
                "sizeLimit": QUANTITY,
                "volume": {"type": ["object", "null"]},
            },
            "SMOLTBOT_SPOOL_DIR and its volume",
        )
    return {
        "$schema": DRAFT,
        "title": f"smoltbot {name}",
        "type": "object",
        "additionalProperties": False,
        "properties": props,
    }


def analyzer_schema(settings: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The verifier's `analyzer` values: the backend's settings, and where its key comes from."""
    return obj(
        {
            "backend": desc(
                settings["SMOLTBOT_ANALYZER_BACKEND"],
                "SMOLTBOT_ANALYZER_BACKEND; anything but rules opens egress to baseUrl's port",
            ),
            "baseUrl": {
                "type": "string",
                "pattern": HTTP_URL,
                "description": "SMOLTBOT_ANALYZER_BASE_URL: the analysis server (never the "
                "gateway; no credentials)",
            },
            "model": desc(settings["SMOLTBOT_ANALYZER_MODEL"], "SMOLTBOT_ANALYZER_MODEL"),
            "apiKey": {
                "type": "string",
                "pattern": "^\\S*$",
                "description": "SMOLTBOT_ANALYZER_API_KEY, stored in the chart's Secret",
            },
            "existingSecret": desc(STR, "Your Secret holding the key (the chart stores none)"),
            "existingSecretKey": {
                "type": "string",
                "pattern": "^[-._a-zA-Z0-9]+$",
                "description": "The key's name in existingSecret",
            },
        },
        "Conscience analysis: the backend, its server and its key (docs/operations.md, Verifier)",
    )


# ---------------------------------------------------------------------------------------------
# Umbrella chart


def global_schema() -> dict[str, Any]:
    shared = settings_properties(BusSettings)
    allowed = set(shared) - CHART_MANAGED
    peers = arr(description="NetworkPolicy peers")
    return obj(
        {
            "image": obj(
                {"registry": STR, "tag": NOT_LATEST, "pullPolicy": PULL_POLICY},
                "Defaults of every smoltbot image",
            ),
            "imagePullSecrets": arr({"type": ["string", "object"]}),
            "fullnameOverride": {"type": "string", "maxLength": 40},
            "commonLabels": STRING_MAP,
            "secrets": obj(
                {
                    "existingSecret": STR,
                    "adminToken": {
                        "type": "string",
                        "pattern": "^(.{16,})?$",
                        "description": "SMOLTBOT_ADMIN_TOKEN: at least 16 characters, or empty",
                    },
                    "eventKey": desc(
                        shared["SMOLTBOT_EVENT_KEY"], "SMOLTBOT_EVENT_KEY (empty: generated)"
                    ),
                    "eventKeysRetired": desc(
                        shared["SMOLTBOT_EVENT_KEYS_RETIRED"], "SMOLTBOT_EVENT_KEYS_RETIRED"
                    ),
                },
                "The Secret every service reads",
            ),
            "redis": obj(
                {
                    "inCluster": BOOL,
                    "url": {"type": "string", "pattern": "^((redis|rediss)://.+)?$"},
                    "port": PORT,
                }
            ),
            "postgresql": obj(
                {
                    "inCluster": BOOL,
                    "url": {"type": "string", "pattern": "^(postgres(ql)?://.+)?$"},
                    "port": PORT,
                }
            ),
            "config": config_schema(
                shared, allowed, "Settings every service shares, by environment variable"
            ),
            "keda": obj(
                {
                    "redis": obj(
                        {
                            "address": {"type": "string", "pattern": "^([^:/ ]+:[0-9]+)?$"},
                            "databaseIndex": int_min(0),
                            "enableTLS": BOOL,
                        }
                    ),
                    "authenticationRef": STR,
                }
            ),
            "serviceMonitor": obj(
                {"enabled": BOOL, "interval": STR, "scrapeTimeout": STR, "labels": STRING_MAP}
            ),
            "networkPolicy": obj(
                {
                    "enabled": BOOL,
                    "metricsFrom": peers,
                    "dnsTo": peers,
                    "redisTo": peers,
                    "postgresqlTo": peers,
                    "httpsTo": peers,
                    "kedaFrom": peers,
                }
            ),
            "serviceAccount": obj({"create": BOOL, "name": STR, "annotations": STRING_MAP}),
            "podSecurityContext": POD_SECURITY_CONTEXT,
            "securityContext": CONTAINER_SECURITY_CONTEXT,
            "nodeSelector": STRING_MAP,
            "tolerations": arr(),
            "priorityClassName": STR,
        },
        "Values every subchart reads",
    )


def umbrella_schema() -> dict[str, Any]:
    ingress_host = obj(
        {
            "enabled": BOOL,
            "host": STR,
            "path": {"type": "string", "pattern": "^/"},
            "annotations": STRING_MAP,
            "tls": obj({"enabled": BOOL, "secretName": STR}),
        }
    )
    server = {
        "image": image(third_party=True),
        "runAsUser": int_min(1),
        "fsGroup": int_min(0),
        "persistence": PERSISTENCE,
        "resources": RESOURCES,
    }
    props: dict[str, Any] = {
        "global": global_schema(),
        "smoltbot-lib": desc(OBJECT, "The library chart's (empty) values"),
    }
    for name in SERVICES:
        props[name] = desc(OBJECT, f"The {name} subchart (charts/services/{name}/values.yaml)")
    props.update(
        {
            "migrate": obj(
                {
                    "enabled": BOOL,
                    "image": image(),
                    "connectAttempts": {"type": "integer", "minimum": 1, "maximum": 1000},
                    "backoffLimit": int_min(0),
                    "activeDeadlineSeconds": int_min(30),
                    "hookWeight": {"type": "integer"},
                    "resources": RESOURCES,
                    "podAnnotations": STRING_MAP,
                },
                "`smoltbot migrate` hook Job",
            ),
            "ingress": obj(
                {
                    "enabled": BOOL,
                    "className": STR,
                    "annotations": STRING_MAP,
                    "gateway": ingress_host,
                    "api": ingress_host,
                }
            ),
            "redis": obj(
                {**server, "maxmemory": {"type": "string", "pattern": "^[0-9]+(b|kb|mb|gb)?$"}},
                "In-cluster Redis (global.redis.inCluster)",
            ),
            "postgresql": obj(
                {
                    **server,
                    "database": {"type": "string", "pattern": "^[a-z_][a-z0-9_]*$"},
                    "username": {"type": "string", "pattern": "^[a-z_][a-z0-9_]*$"},
                },
                "In-cluster PostgreSQL (global.postgresql.inCluster)",
            ),
            "tests": obj(
                {"enabled": BOOL, "image": image(third_party=True), "resources": RESOURCES},
                "`helm test` pod",
            ),
        }
    )
    return {
        "$schema": DRAFT,
        "title": "smoltbot",
        "type": "object",
        "additionalProperties": False,
        "properties": props,
    }


def schemas(root: Path = CHARTS) -> dict[Path, str]:
    """Every schema file this script owns and its content."""
    out = {
        root / "services" / name / "values.schema.json": service_schema(name) for name in SERVICES
    }
    out[root / "smoltbot" / "values.schema.json"] = umbrella_schema()
    return {path: json.dumps(schema, indent=2) + "\n" for path, schema in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when a schema is out of date")
    args = parser.parse_args()
    stale = []
    for path, text in schemas().items():
        if path.exists() and path.read_text() == text:
            continue
        stale.append(path)
        if not args.check:
            path.write_text(text)
    for path in stale:
        print(f"{'out of date' if args.check else 'wrote'}: {path}")  # noqa: T201
    sys.exit(1 if (args.check and stale) else 0)


if __name__ == "__main__":
    main()
