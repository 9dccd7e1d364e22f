"""ApiSettings: defaults, and every bad or missing variable named by its environment name."""

from __future__ import annotations

import pytest
from smoltbot_api.settings import ApiSettings, load_api_settings
from smoltbot_config import SettingsError

GOOD = {
    "DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/smoltbot",
    "SMOLTBOT_ADMIN_TOKEN": "x" * 16,
}


def test_defaults() -> None:
    settings = load_api_settings(GOOD)
    assert isinstance(settings, ApiSettings)
    assert settings.port == 8788
    assert settings.host == "0.0.0.0"
    assert settings.admin_token == "x" * 16
    assert settings.db_pool_min_size <= settings.db_pool_max_size


def test_overrides() -> None:
    settings = load_api_settings(
        {
            **GOOD,
            "SMOLTBOT_API_PORT": "9999",
            "SMOLTBOT_API_HOST": "127.0.0.1",
            "SMOLTBOT_API_DB_POOL_MAX_SIZE": "3",
        }
    )
    assert (settings.port, settings.host, settings.db_pool_max_size) == (9999, "127.0.0.1", 3)


def test_missing_required_variables_are_all_named() -> None:
    with pytest.raises(SettingsError) as info:
        load_api_settings({})
    assert set(info.value.problems) == {"DATABASE_URL", "SMOLTBOT_ADMIN_TOKEN"}
    assert "required" in info.value.problems["SMOLTBOT_ADMIN_TOKEN"]


def test_short_token_and_bad_port_reported_together() -> None:
    with pytest.raises(SettingsError) as info:
        load_api_settings({**GOOD, "SMOLTBOT_ADMIN_TOKEN": "short", "SMOLTBOT_API_PORT": "70000"})
    problems = info.value.problems
    assert set(problems) == {"SMOLTBOT_ADMIN_TOKEN", "SMOLTBOT_API_PORT"}
    assert problems["SMOLTBOT_ADMIN_TOKEN"] == "must be at least 16 characters"
    # The token itself must never appear in the message (it is a secret).
    assert "short" not in str(info.value)


def test_missing_token_with_bad_url() -> None:
    with pytest.raises(SettingsError) as info:
        load_api_settings({"DATABASE_URL": "mysql://nope"})
    assert set(info.value.problems) == {"DATABASE_URL", "SMOLTBOT_ADMIN_TOKEN"}


def test_pool_min_above_max_rejected() -> None:
    with pytest.raises(SettingsError) as info:
        load_api_settings(
            {**GOOD, "SMOLTBOT_API_DB_POOL_MIN_SIZE": "5", "SMOLTBOT_API_DB_POOL_MAX_SIZE": "2"}
        )
    assert "SMOLTBOT_API_DB_POOL_MIN_SIZE" in str(info.value)
