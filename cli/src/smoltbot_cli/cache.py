"""``smoltbot cache rebuild``: rewrite ``cfg:{agent}`` from PostgreSQL, directly.

The repair for when Redis lost its keys (a flush, a restore from an old snapshot) and the
api's reconcile loop is not running. Each agent's row is written through
``smoltbot_agentstate.AgentState.put`` with the row's ``cfg_version``, so a newer key (an
auto-containment the row has not adopted yet) is never overwritten.
"""

from __future__ import annotations

import click
import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from redis.asyncio import Redis
from smoltbot_agentstate import AgentState
from smoltbot_config import CommonSettings, PostgresUrl, load_settings_or_exit
from smoltbot_db.agents import CONFIG_COLUMNS, config_of_row

from smoltbot_cli.bus_tools import echo_json, run_bus

__all__ = ["cache_group"]

_SELECT = sql.SQL("SELECT id, {} FROM agents").format(
    sql.SQL(", ").join(sql.Identifier(c) for c in CONFIG_COLUMNS)
)


class CacheSettings(CommonSettings, frozen=True, kw_only=True):
    database_url: PostgresUrl


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
    query = _SELECT + sql.SQL(" WHERE id = ANY(%s)" if agents else "") + sql.SQL(" ORDER BY id")
    with psycopg.connect(config.database_url, connect_timeout=5) as conn:
        rows = (
            conn.cursor(row_factory=dict_row)
            .execute(query, [list(agents)] if agents else [])
            .fetchall()
        )
    missing = sorted(set(agents) - {r["id"] for r in rows})

    async def work(client: Redis) -> dict[str, str]:
        state = AgentState(client, config.stream_prefix)
        return {r["id"]: (await state.put(r["id"], config_of_row(r))).outcome for r in rows}

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
