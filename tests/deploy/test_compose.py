"""compose.yaml and its overrides (deploy/compose/): what the stack promises, checked offline.

The structure is asserted with pyyaml; Debian's docker-compose validates every combination of
files against the compose schema (`docker-compose config -q`, no daemon needed). The containers
themselves run in `make test-deploy` (tests/deploy/test_containers.py).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml
from smoltbot_config import env_names

from deploy import env_example

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"
OVERRIDES = ROOT / "deploy" / "compose"
SERVICES = ("gateway", "observer", "verifier", "persister", "api", "notifier")
SETTINGS = env_example.SERVICE_SETTINGS
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
# docker-compose needs the variables compose.yaml requires (`${VAR:?...}`) to be set.
REQUIRED_ENV = {
    "SMOLTBOT_ADMIN_TOKEN": "compose-test-token-0123456789",
    "EXTERNAL_REDIS_URL": "redis://redis.example:6379/0",
    "EXTERNAL_DATABASE_URL": "postgresql://smoltbot@pg.example:5432/smoltbot",
}


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load(COMPOSE)


def services(compose: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = compose["services"]
    return result


def conditions(service: dict[str, Any]) -> dict[str, str]:
    return {name: dep["condition"] for name, dep in service.get("depends_on", {}).items()}


def setting_default(service: str, variable: str) -> str:
    cls = SETTINGS[service]
    field = next(f for f in msgspec.structs.fields(cls) if f.encode_name == variable)
    return str(field.default)


def test_redis_keeps_every_entry_and_survives_restarts(compose: dict[str, Any]) -> None:
    redis = services(compose)["redis"]
    assert redis["image"].endswith("redis:7")
    command = [str(part) for part in redis["command"]]
    flags = dict(zip(command[1::2], command[2::2], strict=True))
    assert flags["--appendonly"] == "yes"
    assert flags["--appendfsync"] == "everysec"
    assert flags["--maxmemory-policy"] == "noeviction"
    assert "redis-data:/data" in redis["volumes"]
    assert redis["healthcheck"]["test"][1:] == ["redis-cli", "ping"]


def test_postgres_15_with_a_volume(compose: dict[str, Any]) -> None:
    postgres = services(compose)["postgres"]
    assert postgres["image"].endswith("postgres:15")
    assert "postgres-data:/var/lib/postgresql/data" in postgres["volumes"]
    assert "pg_isready" in postgres["healthcheck"]["test"]


def test_migrate_is_a_one_shot_that_waits_for_postgres(compose: dict[str, Any]) -> None:
    migrate = services(compose)["migrate"]
    assert migrate["command"][:2] == ["smoltbot", "migrate"]
    # It waits for the database itself (2 s apart), not through depends_on (podman 4.3).
    attempts = migrate["command"][migrate["command"].index("--connect-attempts") + 1]
    assert int(attempts) * 2 >= 60
    assert migrate["restart"] == "no"
    assert conditions(migrate) == {}
    assert "smoltbot-cli:" in migrate["image"]


@pytest.mark.parametrize("name", SERVICES)
def test_service_waits_for_its_dependencies(compose: dict[str, Any], name: str) -> None:
    service = services(compose)[name]
    deps = conditions(service)
    assert deps["event-key"] == "service_completed_successfully"
    if name in {"persister", "api"}:
        assert deps["migrate"] == "service_completed_successfully"
    # The gateway serves (and spools) while Redis is down; every other service needs it.
    assert deps["redis"] == ("service_started" if name == "gateway" else "service_healthy")


@pytest.mark.parametrize("name", SERVICES)
def test_service_image_healthcheck_and_event_key(compose: dict[str, Any], name: str) -> None:
    service = services(compose)[name]
    assert service["image"] == (
        f"${{SMOLTBOT_IMAGE_REGISTRY:-localhost}}/smoltbot-{name}:${{SMOLTBOT_VERSION:-{VERSION}}}"
    )
    assert service["healthcheck"]["test"] == ["CMD", "smoltbot-healthcheck", "/health/ready"]
    assert service["restart"] == "unless-stopped"
    assert "event-key:/run/smoltbot/keys:ro" in service["volumes"]
    port_var = f"SMOLTBOT_{name.upper()}_PORT"
    default = setting_default(name, port_var)
    assert service["environment"][port_var] == f"${{{port_var}:-{default}}}"


def test_bodies_are_encrypted_by_default(compose: dict[str, Any]) -> None:
    init = services(compose)["event-key"]
    assert init["command"] == ["smoltbot-init-event-key"]
    assert init["restart"] == "no"
    assert "event-key:/run/smoltbot/keys" in init["volumes"]
    for name in SERVICES:
        assert services(compose)[name]["environment"]["SMOLTBOT_EVENT_KEY"] == (
            "${SMOLTBOT_EVENT_KEY:-}"
        )


def test_every_named_volume_is_declared(compose: dict[str, Any]) -> None:
    used = {
        mount.split(":", 1)[0]
        for service in services(compose).values()
        for mount in service.get("volumes", [])
        if not mount.startswith(("/", "."))
    }
    assert used == set(compose["volumes"])
    assert {"redis-data", "postgres-data", "event-key", "gateway-spool"} <= used


def test_fake_upstream_profile_and_its_env_file(compose: dict[str, Any]) -> None:
    fake = services(compose)["fake-upstream"]
    assert fake["profiles"] == ["fake-upstream"]
    assert fake["command"][:3] == ["python", "-m", "smoltbot_testing.fake_upstream"]
    port = fake["command"][-1]
    env = dict(
        line.split("=", 1)
        for line in (OVERRIDES / "fake-upstream.env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert env["COMPOSE_PROFILES"] == "fake-upstream"
    default_port = re.fullmatch(r"\$\{SMOLTBOT_FAKE_UPSTREAM_PORT:-(\d+)\}", port)
    assert default_port, port
    for provider in ("ANTHROPIC", "OPENAI", "GEMINI"):
        url = env[f"SMOLTBOT_UPSTREAM_{provider}_URL"]
        assert url == f"http://fake-upstream:{default_port.group(1)}"
        assert f"SMOLTBOT_UPSTREAM_{provider}_URL" in services(compose)["gateway"]["environment"]


def test_external_override_replaces_every_url(compose: dict[str, Any]) -> None:
    external = services(load(OVERRIDES / "external.yaml"))
    for name, service in services(compose).items():
        env = service.get("environment", {})
        for var, external_var in (
            ("REDIS_URL", "EXTERNAL_REDIS_URL"),
            ("DATABASE_URL", "EXTERNAL_DATABASE_URL"),
        ):
            if var in env and name not in {"redis", "postgres"}:
                assert external_var in external[name]["environment"][var], (name, var)
    # The bundled servers become gates that only wait for the external ones.
    for name in ("redis", "postgres"):
        assert external[name]["command"] == ["sleep", "infinity"]
        assert "python" in external[name]["healthcheck"]["test"]


def test_host_network_override_covers_every_service(compose: dict[str, Any]) -> None:
    host = services(load(OVERRIDES / "host-network.yaml"))
    assert set(host) == set(services(compose))
    assert all(service == {"network_mode": "host"} for service in host.values())


def test_every_compose_variable_is_a_setting_or_listed() -> None:
    unknown = (
        env_example.compose_references()
        - env_example.settings_variables()
        - set(env_example.compose_variables())
    )
    assert sorted(unknown) == []
    listed = set(env_example.compose_variables())
    assert listed <= env_example.compose_references() | env_example.settings_variables()


def test_compose_passes_only_variables_the_services_read(compose: dict[str, Any]) -> None:
    for name in SERVICES:
        passed = set(services(compose)[name]["environment"])
        read = set(env_names(SETTINGS[name]).values())
        assert sorted(passed - read) == [], name


# --- docker-compose config -q ----------------------------------------------------------------


@pytest.fixture(scope="module")
def docker_compose() -> str:
    """Debian's docker-compose, installed with apt when missing (as root, like the bench)."""
    found = shutil.which("docker-compose")
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip("docker-compose is not installed and apt-get cannot install it here")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    apt = ["apt-get", "-o", "DPkg::Lock::Timeout=300"]
    update = subprocess.run(
        [*apt, "update", "-q"], env=env, capture_output=True, text=True, check=False
    )
    if update.returncode != 0:
        pytest.skip(f"apt is unreachable, cannot install docker-compose: {update.stderr[-300:]}")
    install = subprocess.run(
        [*apt, "install", "-y", "-q", "docker-compose"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert install.returncode == 0, install.stderr[-2000:]
    found = shutil.which("docker-compose")
    assert found
    return found


@pytest.mark.parametrize(
    "args",
    [
        ["-f", "compose.yaml"],
        ["--env-file", "deploy/compose/fake-upstream.env", "-f", "compose.yaml"],
        ["-f", "compose.yaml", "-f", "deploy/compose/external.yaml"],
        [
            "-f",
            "compose.yaml",
            "-f",
            "deploy/compose/external.yaml",
            "-f",
            "deploy/compose/host-network.yaml",
        ],
    ],
    ids=["bundled", "fake-upstream", "external", "external-host-network"],
)
def test_docker_compose_accepts(docker_compose: str, args: list[str], tmp_path: Path) -> None:
    result = compose_config(docker_compose, tmp_path, args, REQUIRED_ENV)
    assert result.returncode == 0, result.stderr


def test_docker_compose_requires_the_admin_token(docker_compose: str, tmp_path: Path) -> None:
    result = compose_config(docker_compose, tmp_path, ["-f", "compose.yaml"], {})
    assert result.returncode != 0
    assert "SMOLTBOT_ADMIN_TOKEN" in result.stderr


def compose_config(
    docker_compose: str, tmp_path: Path, args: list[str], given: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """``docker-compose config -q`` on ``args`` with only ``given`` of the compose variables set;
    the project directory has no .env, so a developer's .env plays no part."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMOLTBOT_", "COMPOSE_"))}
    files = [str(ROOT / a) if a.endswith((".yaml", ".env")) else a for a in args]
    return subprocess.run(
        [docker_compose, "--project-directory", str(tmp_path), *files, "config", "-q"],
        env={**env, **given},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
