"""Observer settings from the environment."""

from __future__ import annotations

import base64
import os

import pytest
from smoltbot_config import SettingsError, load_settings
from smoltbot_observer.settings import ObserverSettings
from smoltbot_observer.worker import consumer_config
from smoltbot_testing.procs import run_entrypoint


def test_defaults() -> None:
    settings = load_settings(ObserverSettings, {})
    assert (settings.port, settings.host, settings.batch_size) == (9101, "0.0.0.0", 50)
    config = consumer_config(settings)
    assert list(config.streams) == ["exchanges:priority", "exchanges"]
    assert (config.group, config.batch_size) == ("observer", 50)


def test_environment_overrides() -> None:
    settings = load_settings(
        ObserverSettings,
        {
            "SMOLTBOT_OBSERVER_PORT": "9200",
            "SMOLTBOT_OBSERVER_BATCH_SIZE": "10",
            "SMOLTBOT_OBSERVER_CARD_CACHE_TTL_S": "0.5",
            "SMOLTBOT_STREAM_PREFIX": "x:",
        },
    )
    assert (settings.port, settings.batch_size, settings.card_cache_ttl_s) == (9200, 10, 0.5)
    assert settings.stream_prefix == "x:"


def test_every_bad_variable_is_named() -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(
            ObserverSettings,
            {
                "SMOLTBOT_OBSERVER_PORT": "70000",
                "SMOLTBOT_OBSERVER_BATCH_SIZE": "0",
                "SMOLTBOT_BUS_MIN_IDLE_MS": "5",
            },
        )
    assert set(info.value.problems) == {
        "SMOLTBOT_OBSERVER_PORT",
        "SMOLTBOT_OBSERVER_BATCH_SIZE",
        "SMOLTBOT_BUS_MIN_IDLE_MS",
    }


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SMOLTBOT_EVENT_KEY", "not-base64"),
        ("SMOLTBOT_EVENT_KEY", base64.b64encode(b"sixteen byte key").decode()),
        ("SMOLTBOT_EVENT_KEYS_RETIRED", f"{base64.b64encode(bytes(32)).decode()},not-base64"),
    ],
    ids=["not-base64", "wrong-length", "retired-entry"],
)
def test_malformed_event_key_exits_2_naming_it_without_echoing_it(
    variable: str, value: str
) -> None:
    """Before: EventKeyError at run time, exit 1 with a traceback, restarted by supervisors."""
    result = run_entrypoint("observer", {**os.environ, variable: value})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"smoltbot-observer: invalid configuration: {variable} (")
    assert "not-base64" not in lines[0]
    assert value not in lines[0]
    assert "Traceback" not in result.stderr
