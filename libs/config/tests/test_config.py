"""Settings: every malformed or missing variable named at once, exit 2 with one line."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from typing import Annotated, Literal

import msgspec
import pytest
from smoltbot_config import (
    CommonSettings,
    PostgresUrl,
    SettingsCheckError,
    SettingsError,
    env_names,
    explained,
    load_settings,
)


class Example(CommonSettings, frozen=True, kw_only=True):
    database_url: PostgresUrl
    port: int = msgspec.field(default=1, name="EXAMPLE_PORT")


class Checked(CommonSettings, frozen=True, kw_only=True):
    low: int = 1
    high: int = 2
    mode: Annotated[str, explained("must be a or b", pattern="^(a|b)$")] = "a"

    def __post_init__(self) -> None:
        if self.low > self.high:
            raise SettingsCheckError(low="must not exceed {high}")


def test_defaults_and_conversion_from_strings() -> None:
    settings = load_settings(
        Example, {"DATABASE_URL": "postgresql://x/y", "EXAMPLE_PORT": "99", "LOG_LEVEL": "WARN"}
    )
    assert settings.port == 99
    assert settings.stream_prefix == "smoltbot:"
    assert settings.bus_max_deliveries == 5


def test_every_problem_is_named_by_its_variable() -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(Example, {"EXAMPLE_PORT": "eighty", "REDIS_URL": "http://nope"})
    assert set(info.value.problems) == {"DATABASE_URL", "EXAMPLE_PORT", "REDIS_URL"}
    assert info.value.problems["DATABASE_URL"] == "required but not set"


def test_env_names_are_the_declared_encode_names() -> None:
    names = env_names(Example)
    assert names["database_url"] == "DATABASE_URL"
    assert names["port"] == "EXAMPLE_PORT"
    assert names["stream_prefix"] == "SMOLTBOT_STREAM_PREFIX"
    assert names["redis_url"] == "REDIS_URL"
    assert names["bus_max_bytes"] == "SMOLTBOT_BUS_MAX_BYTES"


def test_every_shared_variable_is_upper_case_and_service_wide() -> None:
    """The shared groups: service basics and bus tuning, never a stray field-name variable."""
    names = set(env_names(CommonSettings).values())
    assert all(name == name.upper() for name in names)
    assert names - {"REDIS_URL", "LOG_LEVEL"} == {n for n in names if n.startswith("SMOLTBOT_")}


def test_declared_reason_and_cross_field_check_name_variables() -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(Checked, {"MODE": "c-secret"})
    assert info.value.problems == {"MODE": "must be a or b"}
    assert "c-secret" not in str(info.value)
    with pytest.raises(SettingsError) as info:
        load_settings(Checked, {"LOW": "3"})
    assert info.value.problems == {"LOW": "must not exceed HIGH"}


def test_choices_are_listed_instead_of_echoing_the_value() -> None:
    class Choosy(CommonSettings, frozen=True, kw_only=True):
        colour: Literal["red", "blue"] = "red"

    with pytest.raises(SettingsError) as info:
        load_settings(Choosy, {"COLOUR": "secret-green"})
    assert info.value.problems == {"COLOUR": "expected one of: blue, red"}


def _key(size: int = 32) -> str:
    return base64.b64encode(os.urandom(size)).decode()


def _decodes_to_32_bytes(text: str) -> bool:
    """The rule the bus's EventCipher applies to every configured key."""
    try:
        return len(base64.b64decode(text.strip(), validate=True)) == 32
    except ValueError:
        return False


KEY_CASES = [
    _key(),
    f" {_key()}\n",
    _key(31),
    _key(33),
    _key().rstrip("="),
    _key() + "=",
    "-_" + _key()[2:],  # the URL-safe alphabet is not what the cipher decodes
    "not-base64",
    "A" * 43 + "=",
    "B" * 42 + "B=",
    "",
    "   ",
]


def _problems(environ: dict[str, str]) -> str | None:
    """The error message for ``environ``, or None when the settings load."""
    try:
        load_settings(CommonSettings, environ)
    except SettingsError as exc:
        return str(exc)
    return None


@pytest.mark.parametrize("text", KEY_CASES)
def test_event_key_is_accepted_exactly_when_it_decodes_to_32_bytes(text: str) -> None:
    problem = _problems({"SMOLTBOT_EVENT_KEY": text})
    assert (problem is None) == (_decodes_to_32_bytes(text) or not text.strip())
    if problem is not None:
        assert problem.startswith("invalid configuration: SMOLTBOT_EVENT_KEY (must be base64")
        assert text.strip() not in problem


def test_random_keys_agree_with_base64_decoding() -> None:
    for size in range(28, 37):
        for _ in range(20):
            key = _key(size)
            assert (_problems({"SMOLTBOT_EVENT_KEY": key}) is None) == _decodes_to_32_bytes(key)


def test_each_retired_key_is_checked() -> None:
    good = f"{_key()}, {_key()},"
    settings = load_settings(CommonSettings, {"SMOLTBOT_EVENT_KEYS_RETIRED": good})
    assert settings.event_keys_retired == good
    with pytest.raises(SettingsError) as info:
        load_settings(CommonSettings, {"SMOLTBOT_EVENT_KEYS_RETIRED": f"{_key()},hunter2"})
    assert set(info.value.problems) == {"SMOLTBOT_EVENT_KEYS_RETIRED"}
    assert "hunter2" not in str(info.value)


def test_exit_2_with_one_line_that_does_not_echo_the_value() -> None:
    code = (
        "from smoltbot_config import CommonSettings, load_settings_or_exit\n"
        "load_settings_or_exit(CommonSettings, 'demo')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={"REDIS_URL": "http://user:hunter2@host", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "REDIS_URL" in result.stderr
    assert "hunter2" not in result.stderr
