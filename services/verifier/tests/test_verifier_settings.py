"""Verifier settings: cross-field and backend checks are reported under their variables."""

from __future__ import annotations

import pytest
from smoltbot_analysis import make_analyzer
from smoltbot_config import SettingsError, load_settings
from smoltbot_verifier.settings import VerifierSettings


def test_defaults_build_an_analyzer() -> None:
    settings = load_settings(VerifierSettings, {})
    assert (settings.port, settings.batch_size, settings.analyzer_backend) == (9102, 50, "rules")
    assert make_analyzer(settings.analyzer_backend) is not None


def test_min_idle_below_three_timeouts_names_both_variables() -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(VerifierSettings, {"SMOLTBOT_BUS_MIN_IDLE_MS": "1000"})
    assert info.value.problems == {
        "SMOLTBOT_BUS_MIN_IDLE_MS": "must be at least 3x SMOLTBOT_ANALYZER_TIMEOUT_MS"
    }


def test_llm_backend_without_its_key_is_bad_configuration_not_a_crash() -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(
            VerifierSettings,
            {"SMOLTBOT_ANALYZER_BACKEND": "anthropic", "SMOLTBOT_BUS_MIN_IDLE_MS": "1000"},
        )
    problems = info.value.problems
    assert set(problems) == {"SMOLTBOT_ANALYZER_API_KEY", "SMOLTBOT_BUS_MIN_IDLE_MS"}
    assert problems["SMOLTBOT_ANALYZER_API_KEY"] == (
        "required for the anthropic backend (or ANTHROPIC_API_KEY)"
    )


def test_unknown_backend_lists_the_choices() -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(VerifierSettings, {"SMOLTBOT_ANALYZER_BACKEND": "magic"})
    assert info.value.problems["SMOLTBOT_ANALYZER_BACKEND"].startswith("expected one of: ")
