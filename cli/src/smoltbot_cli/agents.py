"""``smoltbot agent``: an agent's enforcement and containment, through the api.

``show`` reads ``GET /v1/agents/{id}/enforcement`` and ``.../containment``; ``pause``,
``resume``, ``kill`` and ``reactivate`` post to the api, which commits PostgreSQL first and
then writes ``cfg:{agent}`` (architecture §4), so the gateways refuse a paused agent's next
call within a second. Repairing ``cfg:{agent}`` directly from PostgreSQL (the api down, Redis
flushed) is ``smoltbot cache rebuild``.
"""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console
from rich.text import Text

from smoltbot_cli.api_client import ApiClient, api_options
from smoltbot_cli.bus_tools import echo_json
from smoltbot_cli.tables import print_rich_table

__all__ = ["agent_group"]

_STATUS_STYLE = {"active": "green", "paused": "yellow", "killed": "red"}


@click.group("agent", short_help="Show, pause, resume or kill an agent (through the api).")
def agent_group() -> None:
    """An agent's enforcement settings and containment, through the smoltbot api
    (SMOLTBOT_API_URL, SMOLTBOT_API_KEY; changes need a key with scope write)."""


def _status(value: str) -> Text:
    return Text(value, style=_STATUS_STYLE.get(value, ""))


@agent_group.command("show")
@click.argument("agent")
@api_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def show_command(agent: str, api_url: str, api_key: str | None, as_json: bool) -> None:
    """Show AGENT's enforcement settings, containment and its latest containment changes."""
    client = ApiClient(api_url, api_key)
    settings = client.get(f"/agents/{agent}/enforcement")
    containment = client.get(f"/agents/{agent}/containment", limit=5)
    if as_json:
        echo_json({"agent_id": agent, "enforcement": settings, "containment": containment})
        return
    console = Console(highlight=False)
    line = Text(f"{agent}: ")
    line.append_text(_status(containment["status"]))
    line.append(
        f", mode {settings['enforcement_mode']}, nudge {settings['nudge_strategy']}, "
        f"auto-containment {settings['auto_containment_threshold'] or 'off'}, "
        f"cfg_version {settings['cfg_version']}"
    )
    console.print(line)
    if containment["status"] != "active":
        console.print(
            f"contained by {containment['contained_by']} at {containment['contained_at']}: "
            f"{containment['containment_reason']}",
            markup=False,
        )
    if containment["log"]:
        print_rich_table(
            ["decided_at", "action", "actor", "new_status", "reason"],
            [
                [e["decided_at"], e["action"], e["actor"], e["new_status"], e["reason"]]
                for e in containment["log"]
            ],
            title="latest containment changes",
        )


def _action(name: str, help_text: str) -> click.Command:
    @click.command(name, help=help_text)
    @click.argument("agent")
    @click.option("--reason", default=None, help="Why (kept in the containment log).")
    @api_options
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
    def command(
        agent: str, reason: str | None, api_url: str, api_key: str | None, as_json: bool
    ) -> None:
        body: dict[str, Any] = {} if reason is None else {"reason": reason}
        answer = ApiClient(api_url, api_key).post(f"/agents/{agent}/{name}", body)
        if as_json:
            echo_json(answer)
            return
        line = Text(f"{agent}: {answer['previous_status']} -> ")
        line.append_text(_status(answer["containment_status"]))
        line.append(f" (cfg_version {answer['cfg_version']})")
        if not answer["cfg_synced"]:
            line.append("; gateways get it within seconds (cfg reconcile)")
        Console(highlight=False).print(line)

    return command


agent_group.add_command(
    _action(
        "pause",
        "Pause AGENT: its next gateway call gets 403 containment_error.\n\n"
        "\b\nExample:\n  smoltbot agent pause smolt-1a2b3c4d --reason 'runaway tool use'",
    )
)
agent_group.add_command(
    _action(
        "resume",
        "Resume a paused AGENT (also one the verifier auto-paused).\n\n"
        "\b\nExample:\n  smoltbot agent resume smolt-1a2b3c4d",
    )
)
agent_group.add_command(
    _action(
        "kill",
        "Kill AGENT (active or paused); only `smoltbot agent reactivate` lifts it.\n\n"
        "\b\nExample:\n  smoltbot agent kill smolt-1a2b3c4d --reason 'key leaked'",
    )
)
agent_group.add_command(
    _action(
        "reactivate",
        "Reactivate a killed AGENT.\n\n\b\nExample:\n  smoltbot agent reactivate smolt-1a2b3c4d",
    )
)
