"""``smoltbot cache rebuild``: rewrite ``cfg:{agent}`` from PostgreSQL, directly.

The repair for when Redis lost its keys (a flush, a restore from an old snapshot) and the
api's reconcile loop is not running. Each agent's row is written through
``smoltbot_agentstate.AgentState.put`` with the row's ``cfg_version``, so a newer key (an
auto-containment the row has not adopted yet) is never overwritten.
"""

from __future__ import annotations

from typing import Any

import click
import psycopg
from psycopg.rows import dict_row
from redis.asyncio import Redis
from smoltbot_agentstate import AgentState
from smoltbot_config import CommonSettings, PostgresUrl, load_settings_or_exit
from smoltbot_contracts import AgentConfig

from smoltbot_cli.bus_tools import echo_json, run_bus

__all__ = ["cache_group"]

_SELECT = (
    "SELECT id, enforcement_mode, containment_status, nudge_strategy, nudge_rate,"
    " nudge_threshold, failure_policy, aip_enabled, aap_enabled, auto_containment_threshold,"
    " cfg_version FROM agents"
)


class CacheSettings(CommonSettings, frozen=True, kw_only=True):
    database_url: PostgresUrl


def _config(row: dict[str, Any]) -> AgentConfig:
    threshold = row["auto_containment_threshold"]
    return AgentConfig(
        enforcement_mode=row["enforcement_mode"],
        containment=row["containment_status"],
        nudge_strategy=row["nudge_strategy"],
        nudge_rate=row["nudge_rate"],
        nudge_threshold=row["nudge_threshold"],
        failure_policy=row["failure_policy"],
        aip_enabled=row["aip_enabled"],
        aap_enabled=row["aap_enabled"],
        auto_containment_threshold=(
            AgentConfig().auto_containment_threshold if threshold is None else threshold
        ),
        cfg_version=row["cfg_version"],
    )


@click.group("cache", short_help="Repair the gateways' Redis state from PostgreSQL.")
def cache_group() -> None:
    """Per-agent state in Redis that PostgreSQL is the record of (DATABASE_URL, REDIS_URL)."""


@cache_group.command("rebuild")
@click.argument("agents", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def rebuild_command(agents: tuple[str, ...], as_json: bool) -> None:
    """Rewrite cfg:{agent} of AGENTS (default: every agent) from their PostgreSQL rows.

    \b
    A key that is missing or older than its row is rewritten; a newer one is left alone.

    \b
    Example:
      smoltbot cache rebuild
    """
    config = load_settings_or_exit(CacheSettings, "cli")
    query = _SELECT + (" WHERE id = ANY(%s)" if agents else "") + " ORDER BY id"
    with psycopg.connect(config.database_url, connect_timeout=5) as conn:
        rows = (
            conn.cursor(row_factory=dict_row)
            .execute(query, [list(agents)] if agents else [])
            .fetchall()
        )
    missing = sorted(set(agents) - {r["id"] for r in rows})

    async def work(client: Redis) -> dict[str, str]:
        state = AgentState(client, config.stream_prefix)
        return {r["id"]: (await state.put(r["id"], _config(r))).outcome for r in rows}

    outcomes = run_bus(config, work)
    written = sorted(a for a, o in outcomes.items() if o == "written")
    if as_json:
        echo_json(
            {"written": written, "unchanged": len(outcomes) - len(written), "unknown": missing}
        )
    else:
        click.echo(
            f"cfg rebuilt: {len(written)} written, {len(outcomes) - len(written)} already current"
        )
        for agent in missing:
            click.echo(f"{agent}: no such agent in PostgreSQL", err=True)
    if missing:
        raise SystemExit(1)
