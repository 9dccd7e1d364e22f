"""Settings: every malformed or missing variable named at once, exit 2 with one line."""

from __future__ import annotations

import subprocess
import sys

import pytest
from smoltbot_config import CommonSettings, PostgresUrl, SettingsError, env_names, load_settings


class Example(CommonSettings, frozen=True, kw_only=True):
    __env_names__ = {"database_url": "DATABASE_URL", "port": "EXAMPLE_PORT"}

    database_url: PostgresUrl
    port: int = 1


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


def test_env_names_merge_overrides_up_the_class_tree() -> None:
    names = env_names(Example)
    assert names["database_url"] == "DATABASE_URL"
    assert names["stream_prefix"] == "SMOLTBOT_STREAM_PREFIX"
    assert names["redis_url"] == "REDIS_URL"


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
