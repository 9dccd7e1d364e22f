"""``smoltbot card``: an agent's alignment card, through the api.

``show`` reads ``GET /v1/agents/{id}/card`` (the active card, the merged view the verifier checks
against and the layers: org template, conscience values); ``publish`` posts a card file as the
agent's next version (``POST /v1/agents/{id}/card``, a key with scope ``write``). The api commits
PostgreSQL first and then writes ``card:{agent}``, so the next verdict of that agent uses it.
Offline checks of a card file before publishing are ``smoltbot aap verify|drift``.
"""

from __future__ import annotations

import sys
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.text import Text

from smoltbot_cli.api_client import ApiClient, api_options
from smoltbot_cli.bus_tools import echo_json
from smoltbot_cli.protocol_tools import BadInputError, read_json
from smoltbot_cli.tables import print_rich_table

__all__ = ["card_group"]


@click.group("card", short_help="Show or publish an agent's alignment card (through the api).")
def card_group() -> None:
    """An agent's alignment card through the smoltbot api (SMOLTBOT_API_URL, SMOLTBOT_API_KEY;
    publishing needs a key with scope write)."""


def _bad_input(message: str) -> NoReturn:
    """A card file the command cannot read: one line, exit 2 (as the offline card checks)."""
    click.echo(f"smoltbot: {message}", err=True)
    sys.exit(2)


def _envelope(card: dict[str, Any]) -> dict[str, Any]:
    section = card.get("autonomy") or card.get("autonomy_envelope") or {}
    return section if isinstance(section, dict) else {}


def _declared(card: dict[str, Any]) -> list[str]:
    values = card.get("values") if isinstance(card.get("values"), dict) else {}
    declared = values.get("declared") if isinstance(values, dict) else None
    out = []
    for item in declared if isinstance(declared, list) else []:
        out.append(item["id"] if isinstance(item, dict) and "id" in item else str(item))
    return out


def _from_org(merged: list[Any], own: list[Any]) -> str:
    """The merged list, entries that only the org template added marked with ``(org)``."""
    if not merged:
        return "-"
    return ", ".join(f"{item} (org)" if item not in own else str(item) for item in merged)


@card_group.command("show")
@click.argument("agent")
@api_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (the api's).")
def show_command(agent: str, api_url: str, api_key: str | None, as_json: bool) -> None:
    """Show AGENT's active card, merged with the org layers the verifier applies."""
    view = ApiClient(api_url, api_key).get(f"/agents/{agent}/card")
    if as_json:
        echo_json(view)
        return
    layers = view["layers"]
    own, merged = view["card"], view["merged"]
    console = Console(highlight=False)
    line = Text(f"{agent}: card {view['card_id']} ")
    line.append(
        "default" if view["is_default"] else f"version {view['version']}",
        style="yellow" if view["is_default"] else "green",
    )
    line.append(f", record version {view['record_version']}")
    console.print(line)
    if layers["org_card_exempt"]:
        template = "exempt"
    elif layers["org_template"] is not None:
        template = "applied"
    else:
        template = "enabled, not set" if layers["org_template_enabled"] else "disabled"
    own_env, merged_env = _envelope(own), _envelope(merged)
    values = view["effective_conscience_values"]
    rows = [
        ("issued at", view["issued_at"] or "-"),
        ("org template", template),
        ("declared values", _from_org(_declared(merged), _declared(own))),
        (
            "bounded actions",
            _from_org(
                merged_env.get("bounded_actions") or [], own_env.get("bounded_actions") or []
            ),
        ),
        (
            "forbidden actions",
            _from_org(
                merged_env.get("forbidden_actions") or [], own_env.get("forbidden_actions") or []
            ),
        ),
        ("escalation triggers", len(merged_env.get("escalation_triggers") or [])),
        (
            "conscience values",
            f"{len(values)} ({'own' if layers['conscience_values'] else 'no own'}; org "
            + (layers["conscience_mode"] if layers["org_conscience_values"] is not None else "off")
            + ")",
        ),
    ]
    print_rich_table(("field", "value"), rows)


@card_group.command("publish")
@click.argument("agent")
@click.argument("file", type=click.Path(dir_okay=False))
@api_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (the api's).")
def publish_command(
    agent: str, file: str, api_url: str, api_key: str | None, as_json: bool
) -> None:
    """Publish FILE as AGENT's next card version.

    \b
    FILE is the AAP card as JSON (legacy or unified shape), or an object
    {"card": ..., "conscience_values": [...]} to set the agent's own values too. Each version
    needs a card_id of its own; the api answers 422 naming the field of a card it cannot use.

    \b
    Example:
      smoltbot card publish smolt-1a2b3c4d card.json
    """
    try:
        document = read_json(file)
    except BadInputError as exc:
        _bad_input(str(exc))
    if not isinstance(document, dict):
        _bad_input(f"{file}: expected a JSON object (the card)")
    body = document if "card" in document else {"card": document}
    published = ApiClient(api_url, api_key).post(f"/agents/{agent}/card", body)
    if as_json:
        echo_json(published)
        return
    click.echo(
        f"{agent}: published {published['card_id']} as version {published['version']}"
        f" (card:{{agent}} {published['cache']})"
    )
