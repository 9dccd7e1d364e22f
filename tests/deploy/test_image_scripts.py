"""The scripts the images run: entrypoint (event key from a file), event-key init, healthcheck.

They run here as they do in the image (POSIX sh, the venv's python on PATH); the images
themselves are exercised by `make test-deploy`.
"""

from __future__ import annotations

import base64
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from deploy import env_example
from deploy.images import build, healthcheck

IMAGES = Path(__file__).resolve().parents[2] / "deploy" / "images"
CONTAINERFILE = IMAGES.parent / "Containerfile"
KEY = base64.b64encode(bytes(range(32))).decode()


def sh(script: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    path = os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]
    return subprocess.run(
        ["sh", str(IMAGES / script), *args],
        env={"PATH": path, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_healthcheck_ports_are_the_settings_defaults() -> None:
    ports = healthcheck.DEFAULT_PORTS
    classes = env_example.SERVICE_SETTINGS
    assert set(ports) == set(classes)
    for service, cls in classes.items():
        field = next(f for f in msgspec.structs.fields(cls) if f.name == "port")
        assert field.encode_name == f"SMOLTBOT_{service.upper()}_PORT"
        assert ports[service] == field.default


def test_healthcheck_url_follows_the_port_variable() -> None:
    url = healthcheck.url
    assert url("api", "/health/live", {}) == "http://127.0.0.1:8788/health/live"
    assert url("api", "/health/ready", {"SMOLTBOT_API_PORT": "18788"}) == (
        "http://127.0.0.1:18788/health/ready"
    )
    assert url("cli", "/health/live", {}) is None


def test_containerfile_builds_every_image_the_tooling_knows() -> None:
    text = CONTAINERFILE.read_text()
    case = re.search(r"^\s+([a-z|]+)\) ;; \\$", text, flags=re.MULTILINE)
    assert case
    assert set(case.group(1).split("|")) == set(build.IMAGES)


def test_entrypoint_reads_the_key_file_when_no_key_is_given(tmp_path: Path) -> None:
    key_file = tmp_path / "event.key"
    key_file.write_text(KEY + "\n")
    env = {"SMOLTBOT_EVENT_KEY_FILE": str(key_file), "SMOLTBOT_SERVICE": "gateway"}
    run = sh("entrypoint.sh", "sh", "-c", 'printf %s "$SMOLTBOT_EVENT_KEY"', env=env)
    assert run.returncode == 0, run.stderr
    assert run.stdout == KEY


def test_entrypoint_prefers_a_given_key(tmp_path: Path) -> None:
    key_file = tmp_path / "event.key"
    key_file.write_text(KEY)
    env = {"SMOLTBOT_EVENT_KEY_FILE": str(key_file), "SMOLTBOT_EVENT_KEY": "given"}
    run = sh("entrypoint.sh", "sh", "-c", 'printf %s "$SMOLTBOT_EVENT_KEY"', env=env)
    assert run.stdout == "given"


def test_entrypoint_refuses_a_named_key_file_that_is_missing(tmp_path: Path) -> None:
    env = {"SMOLTBOT_EVENT_KEY_FILE": str(tmp_path / "nope.key")}
    run = sh("entrypoint.sh", "true", env=env)
    assert run.returncode == 2
    assert "SMOLTBOT_EVENT_KEY_FILE" in run.stderr


def test_entrypoint_without_a_key_file_runs_in_clear() -> None:
    run = sh("entrypoint.sh", "sh", "-c", 'printf %s "${SMOLTBOT_EVENT_KEY-unset}"', env={})
    assert run.returncode == 0, run.stderr
    assert run.stdout == "unset"


def test_init_event_key_writes_a_valid_key_once(tmp_path: Path) -> None:
    key_file = tmp_path / "event.key"
    env = {"SMOLTBOT_EVENT_KEY_FILE": str(key_file)}
    first = sh("init-event-key.sh", env=env)
    assert first.returncode == 0, first.stderr
    key = key_file.read_text().strip()
    assert len(base64.b64decode(key, validate=True)) == 32
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    second = sh("init-event-key.sh", env=env)
    assert second.returncode == 0
    assert "keeping" in second.stdout
    assert key_file.read_text().strip() == key


def test_init_event_key_does_nothing_when_a_key_is_given(tmp_path: Path) -> None:
    key_file = tmp_path / "event.key"
    run = sh(
        "init-event-key.sh",
        env={"SMOLTBOT_EVENT_KEY_FILE": str(key_file), "SMOLTBOT_EVENT_KEY": KEY},
    )
    assert run.returncode == 0
    assert not key_file.exists()


@pytest.mark.parametrize("script", ["entrypoint.sh", "init-event-key.sh", "healthcheck.py"])
def test_scripts_are_executable(script: str) -> None:
    assert os.access(IMAGES / script, os.X_OK)
