"""The owner's view through the api: ``smoltbot status``, ``smoltbot integrity AGENT`` and
``smoltbot logs [-n N] [--follow] [AGENT]`` (docs/operations.md, "The owner's view").

Everything is read from ``/v1`` (SMOLTBOT_API_URL, SMOLTBOT_API_KEY: any key can read), never
from PostgreSQL or Redis directly, so what the CLI shows is what the api serves. Failures are one
line on stderr and exit 1 (:mod:`smoltbot_cli.api_client`).
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import click

from smoltbot_cli.api_client import ApiClient, api_options
from smoltbot_cli.bus_tools import echo_json
from smoltbot_cli.tables import print_rich_table

__all__ = ["integrity_command", "logs_command", "status_command"]

_MAX_AGENTS = 1000  # one page of /v1/agents (the api's largest)


def _params(**values: Any) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _agents(client: ApiClient) -> list[dict[str, Any]]:
    page = client.get("/agents", limit=_MAX_AGENTS)
    agents: list[dict[str, Any]] = page["agents"]
    return agents


@click.command("status", short_help="Every agent: enforcement, containment, latest verdict.")
@api_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status_command(api_url: str, api_key: str | None, as_json: bool) -> None:
    """Every agent with its enforcement mode, containment and latest verdict.

    \b
    Most recently seen first; the latest verdict is that of the agent's newest integrity
    checkpoint ("-" when it has none yet).

    \b
    Example:
      smoltbot status --api-url http://127.0.0.1:8788
    """
    client = ApiClient(api_url, api_key)
    rows = []
    for agent in _agents(client):
        aip = client.get(f"/agents/{agent['id']}/integrity/aip")
        rows.append(
            {
                "agent_id": agent["id"],
                "name": agent["name"],
                "enforcement_mode": agent["enforcement_mode"],
                "containment_status": agent["containment_status"],
                "latest_verdict": aip["latest_verdict"],
                "integrity_ratio": aip["integrity_ratio"],
                "last_seen_at": agent["last_seen_at"],
            }
        )
    if as_json:
        echo_json({"agents": rows})
        return
    print_rich_table(
        ["agent", "name", "enforcement", "containment", "latest verdict", "integrity", "last seen"],
        [
            [
                row["agent_id"],
                row["name"],
                row["enforcement_mode"],
                row["containment_status"],
                row["latest_verdict"],
                _ratio(row["integrity_ratio"]),
                row["last_seen_at"],
            ]
            for row in rows
        ],
        title=f"{len(rows)} agent(s)",
        numeric=["integrity"],
    )


@click.command("integrity", short_help="An agent's AAP and AIP integrity scores.")
@click.argument("agent")
@api_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (the api's).")
def integrity_command(agent: str, api_url: str, api_key: str | None, as_json: bool) -> None:
    """AGENT's AAP and AIP integrity scores.

    \b
    AAP: verified traces / traces checked against the card.
    AIP: clear / analysed checkpoints (synthetic ones are counted apart; coverage is
    analysed / all checkpoints).

    \b
    Example:
      smoltbot integrity smolt-1a2b3c4d
    """
    body = ApiClient(api_url, api_key).get(f"/agents/{agent}/integrity")
    if as_json:
        echo_json(body)
        return
    aap, aip = body["aap"], body["aip"]
    print_rich_table(
        ["protocol", "score", "counted", "passed", "review", "violations", "other"],
        [
            [
                "AAP (traces)",
                _ratio(aap["integrity_score"]),
                aap["checked_traces"],
                aap["verified_traces"],
                "-",
                aap["violation_count"],
                f"{aap['total_traces'] - aap['checked_traces']} not verified yet",
            ],
            [
                "AIP (checkpoints)",
                _ratio(aip["integrity_ratio"]),
                aip["analyzed_checks"],
                aip["clear_count"],
                aip["review_count"],
                aip["violation_count"],
                f"{aip['synthetic_checks']} synthetic, coverage {_ratio(aip['coverage'])}",
            ],
        ],
        title=f"{agent}: latest verdict {aip['latest_verdict'] or '-'}",
        numeric=["score", "counted", "passed", "review", "violations"],
    )


def _line(agent_id: str, event: dict[str, Any]) -> str:
    session = event["session_id"] or "-"
    return (
        f"{event['timestamp']}  {agent_id}  {event['kind']:<11}  {event['id']}  "
        f"{session}  {event['summary']}"
    )


def _when(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00"))


def _sort_key(item: tuple[str, dict[str, Any]]) -> tuple[datetime, str, str]:
    event = item[1]
    return _when(event), event["kind"], event["id"]


class _Timeline:
    """The newest events of one agent or of every agent, oldest first, each shown once."""

    def __init__(self, client: ApiClient, agent: str | None, lines: int) -> None:
        self._client = client
        self._agent = agent
        self._lines = lines
        self._first = True
        self._since: dict[str, datetime] = {}  # per agent: the newest time shown
        self._seen: dict[tuple[str, str, str], datetime] = {}  # shown at or after that time

    def _agent_ids(self) -> list[str]:
        if self._agent is not None:
            return [self._agent]
        return [agent["id"] for agent in _agents(self._client)]

    def poll(self) -> list[tuple[str, dict[str, Any]]]:
        """Events not shown yet; the first poll gives the newest ``lines`` of them."""
        found: list[tuple[str, dict[str, Any]]] = []
        for agent_id in self._agent_ids():
            since = self._since.get(agent_id)
            # Later polls ask from the newest time shown (inclusive: times can be equal).
            page = self._client.get(
                f"/agents/{agent_id}/timeline",
                **_params(
                    limit=max(self._lines, 1) if self._first else 1000,
                    since=None if since is None else since.isoformat(),
                ),
            )
            for event in page["events"]:
                if (agent_id, event["kind"], event["id"]) not in self._seen:
                    found.append((agent_id, event))
        found.sort(key=_sort_key)
        shown = found
        if self._first:  # the newest lines; the older ones fetched count as seen
            shown = found[len(found) - self._lines :] if self._lines else []
            self._first = False
        for agent_id, event in found:
            when = _when(event)
            self._seen[(agent_id, event["kind"], event["id"])] = when
            if agent_id not in self._since or when > self._since[agent_id]:
                self._since[agent_id] = when
        self._seen = {key: when for key, when in self._seen.items() if when >= self._since[key[0]]}
        return shown


@click.command("logs", short_help="Traces, checkpoints, drift alerts, containment: newest events.")
@click.argument("agent", required=False)
@click.option(
    "-n",
    "--lines",
    default=20,
    show_default=True,
    type=click.IntRange(0, 1000),
    help="How many of the newest events to show first.",
)
@click.option("-f", "--follow", is_flag=True, help="Keep polling and print new events.")
@click.option(
    "--interval",
    default=2.0,
    show_default=True,
    type=click.FloatRange(0.1, 3600),
    help="Seconds between polls with --follow.",
)
@api_options
@click.option("--json", "as_json", is_flag=True, help="One JSON object per event (JSON lines).")
def logs_command(
    *,
    agent: str | None,
    lines: int,
    follow: bool,
    interval: float,
    api_url: str,
    api_key: str | None,
    as_json: bool,
) -> None:
    """The newest events of AGENT (or of every agent): traces, integrity checkpoints, drift
    alerts and containment changes, oldest first.

    \b
    One line per event: time, agent, kind, id, session, summary. With --follow, new events are
    printed as they are persisted until Ctrl-C.

    \b
    Examples:
      smoltbot logs -n 50 smolt-1a2b3c4d
      smoltbot logs --follow
    """
    timeline = _Timeline(ApiClient(api_url, api_key), agent, lines)
    try:
        while True:
            for agent_id, event in timeline.poll():
                if as_json:
                    echo_json({"agent_id": agent_id, **event})
                else:
                    click.echo(_line(agent_id, event))
            if not follow:
                return
            time.sleep(interval)
    except KeyboardInterrupt:
        return
