"""Operator commands with Redis or PostgreSQL down: one line naming what is down, exit 1."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from smoltbot_cli.main import redact_url
from smoltbot_testing.net import free_port


def smoltbot(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The real command in its own process, so a traceback would show on its stderr."""
    base = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL"}}
    return subprocess.run(
        [sys.executable, "-m", "smoltbot_cli", *args],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_one_line(result: subprocess.CompletedProcess[str], *words: str) -> str:
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0]
    return lines[0]


@pytest.mark.parametrize(
    "args",
    [
        ("dlq", "list"),
        ("replay", "rewind", "exchanges", "observer", "--to", "0"),
        ("streams",),
        ("trim", "--dry-run"),
        ("replay", "verdicts", "--group", "persister", "--from", "0"),
        ("dlq", "purge", "verdicts", "--all", "--yes"),
    ],
    ids=["dlq-list", "replay-rewind", "streams", "trim", "replay", "dlq-purge"],
)
def test_redis_down_is_one_line_naming_it(args: tuple[str, ...]) -> None:
    port = free_port()
    result = smoltbot(*args, REDIS_URL=f"redis://:hunter2@127.0.0.1:{port}/0")
    line = assert_one_line(result, "Redis", "REDIS_URL", f"redis://:***@127.0.0.1:{port}/0")
    assert line == (
        f"smoltbot: cannot reach Redis at redis://:***@127.0.0.1:{port}/0 "
        "(Connection refused); is it running? (REDIS_URL)"
    )
    assert "hunter2" not in result.stderr + result.stdout


def test_postgres_down_is_one_line_naming_it() -> None:
    url = f"postgresql://postgres:hunter2@127.0.0.1:{free_port()}/smoltbot"
    result = smoltbot("migrate", "--connect-attempts", "1", DATABASE_URL=url)
    assert_one_line(result, "PostgreSQL", "DATABASE_URL")
    assert "hunter2" not in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:pw@127.0.0.1:6399/0", "redis://:***@127.0.0.1:6399/0"),
        ("postgresql://u:pw@[::1]:5432/db", "postgresql://u:***@[::1]:5432/db"),
        (
            "postgresql://h/db?password=pw&sslmode=require",
            "postgresql://h/db?password=***&sslmode=require",
        ),
        ("postgresql://postgres@127.0.0.1:5432/db", "postgresql://postgres@127.0.0.1:5432/db"),
        ("unix:///run/redis.sock?db=0", "unix:///run/redis.sock?db=0"),
    ],
)
def test_redact_url_hides_only_passwords(url: str, shown: str) -> None:
    assert redact_url(url) == shown
