"""Observer settings from the environment."""

from __future__ import annotations

import pytest
from smoltbot_config import SettingsError, load_settings
from smoltbot_observer.settings import ObserverSettings
from smoltbot_observer.worker import consumer_config


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
