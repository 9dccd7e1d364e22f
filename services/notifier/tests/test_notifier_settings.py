"""Notifier settings: its batch size is a named, bounded variable like every other."""

from __future__ import annotations

import pytest
from smoltbot_config import SettingsError, env_names, load_settings
from smoltbot_notifier.settings import NotifierSettings


def test_defaults_and_variable_names() -> None:
    settings = load_settings(NotifierSettings, {})
    assert (settings.port, settings.host, settings.batch_size) == (9104, "0.0.0.0", 100)
    names = env_names(NotifierSettings)
    assert names["batch_size"] == "SMOLTBOT_NOTIFIER_BATCH_SIZE"
    assert (names["port"], names["host"]) == ("SMOLTBOT_NOTIFIER_PORT", "SMOLTBOT_NOTIFIER_HOST")


def test_batch_size_is_read_from_its_own_variable_only() -> None:
    settings = load_settings(
        NotifierSettings, {"SMOLTBOT_NOTIFIER_BATCH_SIZE": "20", "BATCH_SIZE": "oops"}
    )
    assert settings.batch_size == 20


@pytest.mark.parametrize("value", ["0", "-1", "10001", "many"])
def test_batch_size_must_be_positive_and_bounded(value: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(NotifierSettings, {"SMOLTBOT_NOTIFIER_BATCH_SIZE": value})
    assert set(info.value.problems) == {"SMOLTBOT_NOTIFIER_BATCH_SIZE"}
