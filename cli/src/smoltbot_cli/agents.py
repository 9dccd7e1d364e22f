"""``smoltbot agent``: an agent's config in ``cfg:{agent}`` (show it, resume a contained agent).

Writes go through ``smoltbot_agentstate``, the key's one writer (architecture §4): a resume is a
versioned compare-and-set, so it never overwrites a change made meanwhile, and the gateways see
it on their next config read. Until the api manages agents, this is how an operator lifts an
auto-containment (docs/operations.md, "Contained agents").
"""

from __future__ import annotations

import click
from redis.asyncio import Redis
from smoltbot_agentstate import AgentState, WriteResult
from smoltbot_contracts import AgentConfig

from smoltbot_cli.bus_tools import echo_json, run_bus, settings

__all__ = ["agent_group"]


@click.group("agent", short_help="Show an agent's config; resume a contained agent.")
def agent_group() -> None:
    """An agent's config in Redis (cfg:{agent}): what the gateway enforces at the door."""


@agent_group.command("show")
@click.argument("agent")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def show_command(agent: str, as_json: bool) -> None:
    """Show AGENT's config (the defaults when it has none)."""
    config = settings()

    async def work(client: Redis) -> AgentConfig:
        return await AgentState(client, config.stream_prefix).read(agent)

    current = run_bus(config, work)
    if as_json:
        echo_json({"agent_id": agent, "config": current})
        return
    click.echo(
        f"{agent}: mode {current.enforcement_mode}, containment {current.containment}, "
        f"cfg_version {current.cfg_version}"
    )


@agent_group.command("resume")
@click.argument("agent")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def resume_command(agent: str, as_json: bool) -> None:
    """Make a contained (paused or killed) AGENT active again; cfg_version moves forward.

    \b
    An agent that is already active is left as it is (exit 0). The containment that paused it
    is not applied again when its traces are replayed.

    \b
    Example:
      smoltbot agent resume smolt-1a2b3c4d
    """
    config = settings()

    async def work(client: Redis) -> WriteResult:
        return await AgentState(client, config.stream_prefix).resume(agent)

    result = run_bus(config, work)
    if as_json:
        echo_json({"agent_id": agent, "outcome": result.outcome, "config": result.config})
        return
    if result.written:
        click.echo(f"{agent}: resumed (cfg_version {result.config.cfg_version})")
    else:
        click.echo(f"{agent}: already active (cfg_version {result.config.cfg_version})")
