"""The ``smoltbot`` command."""

from __future__ import annotations

import sys

import click
from smoltbot_logging import configure

from smoltbot_cli.bus_tools import dlq_group, replay_group
from smoltbot_cli.migrate import migrate_command
from smoltbot_cli.supervisor import SERVICES, build_children, default_environ, run_supervisor


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """smoltbot self-hosted gateway: run the services and operate them.

    Configuration comes from the environment (see .env.example); every service validates its
    own settings at start and exits 2 naming each malformed variable.
    """


@cli.command("up")
@click.option(
    "--fake-upstream",
    is_flag=True,
    help="Also start the fake LLM providers on loopback and point the gateway at them "
    "(development default; no provider keys or network needed).",
)
@click.option(
    "--fake-upstream-port",
    default=9999,
    show_default=True,
    help="Port of the fake providers when --fake-upstream is given.",
)
@click.option(
    "--only",
    "only",
    multiple=True,
    type=click.Choice(SERVICES),
    help="Start only these services (repeatable). Default: all six.",
)
def up_command(fake_upstream: bool, fake_upstream_port: int, only: tuple[str, ...]) -> None:
    """Start every service as a child process and supervise it.

    Children that crash are restarted with backoff; a child that exits 2 (invalid
    configuration) stops everything. Ctrl-C or SIGTERM stops the gateway first, then drains the
    workers in pipeline order. Run `smoltbot migrate` first.
    """
    configure("up", "info")
    services = only or SERVICES
    children = build_children(
        services,
        default_environ(),
        fake_upstream_port=fake_upstream_port if fake_upstream else None,
    )
    sys.exit(run_supervisor(children))


cli.add_command(migrate_command, "migrate")
cli.add_command(dlq_group, "dlq")
cli.add_command(replay_group, "replay")


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
