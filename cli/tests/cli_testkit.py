"""Shared by the CLI tests: the ``smoltbot`` command run in-process on the shared Redis under a
test's key prefix, and stream seeding with the blocking client.

A plain module imported by its repo path (``from cli.tests.cli_testkit import ...``): with
``--import-mode=importlib`` test modules cannot import a conftest or each other.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis
from click.testing import CliRunner, Result
from smoltbot_cli.main import cli
from smoltbot_contracts.codec import to_fields
from smoltbot_testing.env import REDIS_URL
from smoltbot_testing.events import agent_event
from smoltbot_testing.procs import ServiceSet, base_env


def smoltbot(prefix: str, *args: str, stdin: str | None = None, **env: str) -> Result:
    """``smoltbot ARGS`` with Redis and the prefix (and ``env``) in its environment; API
    credentials only when ``env`` gives them (never inherited from the test process)."""
    environ: dict[str, str | None] = {
        "SMOLTBOT_API_KEY": None,
        "SMOLTBOT_ADMIN_TOKEN": None,
        "REDIS_URL": REDIS_URL,
        "SMOLTBOT_STREAM_PREFIX": prefix,
        **env,
    }
    return CliRunner().invoke(cli, list(args), env=environ, input=stdin)


def json_of(result: Result) -> Any:
    """The JSON document a successful ``--json`` run printed on stdout."""
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def seed(client: redis.Redis, key: str, n: int, *, first_ms: int | None = None) -> list[str]:
    """``n`` agent.v1 entries on ``key``; with ``first_ms``, one per second from that time."""
    ids = []
    for i in range(n):
        entry_id = "*" if first_ms is None else f"{first_ms + 1000 * i}-0"
        ids.append(client.xadd(key, to_fields(agent_event(i)), id=entry_id).decode())  # type: ignore[arg-type]
    return ids


def consume(client: redis.Redis, key: str, group: str, n: int, *, ack: int | None = None) -> None:
    """``group`` (created from the start) reads ``n`` entries as consumer ``c1`` and acks the
    first ``ack`` of them (default: all)."""
    client.xgroup_create(key, group, id="0", mkstream=True)
    reply: Any = client.xreadgroup(group, "c1", {key: ">"}, count=n)
    ids = [i for i, _ in reply[0][1]] if reply else []
    acked = ids if ack is None else ids[:ack]
    if acked:
        client.xack(key, group, *acked)


def beat(client: redis.Redis, prefix: str, stream: str, group: str) -> None:
    """Mark ``group`` live on ``stream`` for a minute (its consumers' heartbeat key)."""
    client.set(f"{prefix}hb:{stream}:{group}", "1", px=60_000)


def group_row(client: redis.Redis, key: str, group: str) -> dict[str, Any]:
    rows: list[dict[str, Any]] = client.xinfo_groups(key)  # type: ignore[assignment]
    return next(r for r in rows if r["name"].decode() == group)


@contextmanager
def running_api(database_url: str, prefix: str, log_dir: Path, token: str) -> Iterator[str]:
    """An api process on ``database_url`` (admin token ``token``) for the block; its URL."""
    env = base_env(
        redis_url=REDIS_URL,
        database_url=database_url,
        prefix=prefix,
        admin_token=token,
        upstream_url="http://127.0.0.1:9",
    )
    services = ServiceSet(env=env, log_dir=log_dir)
    try:
        services.start("api")
        yield services.url("api")
    finally:
        services.stop_all()
