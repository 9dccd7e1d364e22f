"""The shared analysis-LLM settings group: one declaration of ``SMOLTBOT_ANALYZER_*`` for every
service that asks an LLM, keys kept out of ``repr``, problems reported under the variables."""

from __future__ import annotations

from collections.abc import Mapping

import msgspec
import pytest
from smoltbot_config import AnalyzerSettings, SettingsCheckError, SettingsError, load_settings

KEY = "sk-config-SECRET-42"


def needs_a_model(
    backend: str, *, base_url: str | None, api_key: str | None, model: str | None
) -> Mapping[str, str]:
    """A stand-in for the analysis library's rule: an LLM backend needs a model."""
    return {} if backend == "rules" or model else {"SMOLTBOT_ANALYZER_MODEL": "required"}


class Service(AnalyzerSettings, frozen=True, kw_only=True):
    def __post_init__(self) -> None:
        if problems := self.analyzer_problems(needs_a_model):
            raise SettingsCheckError(**problems)


def test_the_variables_and_the_key_alias() -> None:
    settings = load_settings(
        AnalyzerSettings,
        {
            "SMOLTBOT_ANALYZER_BACKEND": "anthropic",
            "ANTHROPIC_API_KEY": KEY,
            "SMOLTBOT_ANALYZER_MODEL": "m",
        },
    )
    assert (settings.analyzer_backend, settings.analyzer_model) == ("anthropic", "m")
    assert settings.analyzer_key == KEY
    assert KEY not in repr(settings)
    other = msgspec.structs.replace(settings, analyzer_backend="openai")
    assert other.analyzer_key == ""  # the alias is the anthropic backend's only
    explicit = msgspec.structs.replace(settings, analyzer_api_key="sk-own")
    assert explicit.analyzer_key == "sk-own"


def test_problems_are_reported_under_the_variable() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(Service, {"SMOLTBOT_ANALYZER_BACKEND": "openai"})
    assert caught.value.problems == {"SMOLTBOT_ANALYZER_MODEL": "required"}
    assert load_settings(Service, {}).analyzer_backend == "rules"


def test_an_unknown_backend_is_named() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(AnalyzerSettings, {"SMOLTBOT_ANALYZER_BACKEND": "magic"})
    assert set(caught.value.problems) == {"SMOLTBOT_ANALYZER_BACKEND"}
