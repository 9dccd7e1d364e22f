"""The ``smoltbot`` command."""

from __future__ import annotations

import os
import sys
from typing import Any, NoReturn
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import click
import psycopg
import redis.exceptions
from smoltbot_config import DEFAULT_REDIS_URL
from smoltbot_logging import configure

from smoltbot_cli.agents import agent_group
from smoltbot_cli.api_keys import api_keys_group
from smoltbot_cli.cache import cache_group
from smoltbot_cli.cards import card_group
from smoltbot_cli.dlq import dlq_group
from smoltbot_cli.migrate import migrate_command
from smoltbot_cli.owner import integrity_command, logs_command, status_command
from smoltbot_cli.protocol_tools import aap_group, aip_group
from smoltbot_cli.replay import replay_group
from smoltbot_cli.retention import retention_group
from smoltbot_cli.streams import streams_command, trim_command
from smoltbot_cli.supervisor import SERVICES, build_children, default_environ, run_supervisor

_EXIT_FAILED = 1


def redact_url(url: str) -> str:
    """``url`` with any password (in the authority or a ``password=`` parameter) as ``***``."""
    parts = urlsplit(url)
    params = parse_qsl(parts.query, keep_blank_values=True)
    if parts.password is None and all(key != "password" for key, _ in params):
        return url
    netloc = parts.netloc
    if parts.password is not None:
        netloc = f"{parts.username or ''}:***@{netloc.rpartition('@')[2]}"
    query = urlencode([(k, "***" if k == "password" else v) for k, v in params], safe="*")
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def _why(exc: BaseException) -> str:
    """The operating system's reason ("Connection refused") when known, else the error's gist."""
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, OSError) and cause.errno:  # asyncio words it "Connect call failed"
        return os.strerror(cause.errno)
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror
    first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return first_line.rsplit(": ", 1)[-1]  # psycopg: "connection ... failed: <reason>"


def _unreachable(what: str, variable: str, default: str | None, exc: BaseException) -> NoReturn:
    url = os.environ.get(variable) or default
    where = f" at {redact_url(url)}" if url else ""
    click.echo(
        f"smoltbot: cannot reach {what}{where} ({_why(exc)}); is it running? ({variable})",
        err=True,
    )
    sys.exit(_EXIT_FAILED)


class OperatorCommands(click.Group):
    """Every command, present and future: a dependency that is down is one line, exit 1.

    An operator needs to know which server is unreachable and which variable points at it,
    not a traceback from inside a client library.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            _unreachable("Redis", "REDIS_URL", DEFAULT_REDIS_URL, exc)
        except psycopg.OperationalError as exc:
            _unreachable("PostgreSQL", "DATABASE_URL", None, exc)


@click.group(cls=OperatorCommands, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """smoltbot self-hosted gateway: run the services and operate them.

    Configuration comes from the environment (see .env.example); every service validates its
    own settings at start and exits 2 naming each malformed variable. A command that cannot
    reach Redis or PostgreSQL says which one and exits 1.
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
    configuration) stops everything, and this command exits 2 too. Ctrl-C or SIGTERM stops the
    gateway first, then drains the workers in pipeline order. Run `smoltbot migrate` first.
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
cli.add_command(streams_command, "streams")
cli.add_command(trim_command, "trim")
cli.add_command(dlq_group, "dlq")
cli.add_command(replay_group, "replay")
cli.add_command(agent_group, "agent")
cli.add_command(api_keys_group, "api-keys")
cli.add_command(cache_group, "cache")
cli.add_command(card_group, "card")
cli.add_command(status_command, "status")
cli.add_command(integrity_command, "integrity")
cli.add_command(logs_command, "logs")
cli.add_command(retention_group, "retention")
cli.add_command(aap_group, "aap")
cli.add_command(aip_group, "aip")


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
