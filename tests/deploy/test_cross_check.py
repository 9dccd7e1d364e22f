"""Every deployment path agrees with the code: each setting compose or the chart passes is one a
settings class reads, each service's port is the same number in the settings default, compose,
the chart and .env.example, and every probe path they use is one the services serve."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml
from litestar import Litestar
from smoltbot_config import env_names
from smoltbot_health import Health
from smoltbot_health.litestar_routes import probe_route_handlers

from deploy.env_example import SERVICE_SETTINGS

ROOT = Path(__file__).resolve().parents[2]
SERVICES = tuple(SERVICE_SETTINGS)
# Variables compose.yaml sets for the postgres image itself (not smoltbot's).
IMAGE_OWN = {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"}


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return loaded


def chart_values(service: str) -> dict[str, Any]:
    path = ROOT / "charts" / "services" / service / "values.yaml"
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


def env_example() -> dict[str, str]:
    """Every ``VAR=value`` of .env.example, those written commented out (``# VAR=``) included."""
    lines = (ROOT / ".env.example").read_text().splitlines()
    pairs = (line.removeprefix("# ").split("=", 1) for line in lines)
    return {k: v for k, v in (p for p in pairs if len(p) == 2) if k.isupper() and " " not in k}


def port_field(service: str) -> tuple[str, int]:
    """The service's port variable and its default, from its settings class."""
    cls = SERVICE_SETTINGS[service]
    names = env_names(cls)
    field = next(f for f in msgspec.structs.fields(cls) if f.name == "port")
    default = field.default
    assert isinstance(default, int)
    return names["port"], default


def served_probe_paths() -> set[str]:
    app = Litestar(route_handlers=probe_route_handlers(Health("x")))
    return {route.path for route in app.routes}


def _default(value: object) -> str:
    """``${VAR:-default}`` -> ``default``; a literal stays as it is."""
    found = re.fullmatch(r"\$\{[A-Z0-9_]+(?::-([^}]*))?\}", str(value))
    return (found.group(1) or "") if found else str(value)


@pytest.mark.parametrize("service", SERVICES)
def test_compose_passes_only_settings_the_service_reads(service: str) -> None:
    environment = compose()["services"][service]["environment"]
    reads = set(env_names(SERVICE_SETTINGS[service]).values())
    assert sorted(set(environment) - reads) == []


@pytest.mark.parametrize("service", SERVICES)
def test_one_port_everywhere(service: str) -> None:
    variable, default = port_field(service)
    spec = compose()["services"][service]
    assert _default(spec["environment"][variable]) == str(default)
    for mapping in spec.get("ports", []):
        host, container = (_default(p) for p in re.findall(r"\$\{[^}]+\}|\d+", mapping))
        assert host == container == str(default)
    assert chart_values(service)["port"] == default
    assert env_example()[variable] == str(default)


@pytest.mark.parametrize("service", SERVICES)
def test_compose_healthchecks_use_a_served_probe(service: str) -> None:
    test = compose()["services"][service]["healthcheck"]["test"]
    paths = [arg for arg in test if str(arg).startswith("/")]
    assert paths == ["/health/ready"]
    assert set(paths) <= served_probe_paths()


def test_every_probe_path_in_the_chart_and_images_is_served() -> None:
    served = served_probe_paths()
    assert {"/health/live", "/health/ready", "/health/startup"} <= served
    sources = [
        *(ROOT / "charts").glob("**/templates/**/*"),
        ROOT / "deploy" / "Containerfile",
        *(ROOT / "deploy" / "images").iterdir(),
    ]
    used = {
        path
        for source in sources
        if source.is_file()
        for path in re.findall(r"/health/[a-z]+", source.read_text())
    }
    assert {"/health/live", "/health/ready", "/health/startup"} <= used  # the chart's probes
    assert sorted(used - served) == []


def test_env_example_lists_exactly_the_settings() -> None:
    declared = env_example()
    settings = {v for cls in SERVICE_SETTINGS.values() for v in env_names(cls).values()}
    assert sorted(settings - set(declared)) == []


def test_compose_only_sets_known_variables_for_its_other_services() -> None:
    migrate = set(compose()["services"]["migrate"].get("environment", {}))
    assert migrate == {"DATABASE_URL"}
    assert set(compose()["services"]["postgres"]["environment"]) == IMAGE_OWN
