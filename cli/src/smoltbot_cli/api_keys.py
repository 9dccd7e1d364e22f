"""``smoltbot api-keys``: create, list and revoke the api's keys (docs/api.md, "Authentication").

Writes PostgreSQL directly (``DATABASE_URL``), like ``smoltbot migrate``, through the same code as
the api's ``/v1/api-keys`` (``smoltbot_db.api_keys``): it works before any key exists and while
the api is down, which is how the first key of a deployment is made. Only a key's SHA-256 is
stored; ``create`` prints the key once and nothing can show it again.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar

import click
import msgspec
import psycopg
from psycopg import AsyncConnection
from smoltbot_config import PostgresUrl, load_settings_or_exit
from smoltbot_db import api_keys
from smoltbot_db.api_keys import ApiKey

from smoltbot_cli.bus_tools import echo_json
from smoltbot_cli.tables import print_rich_table

__all__ = ["api_keys_group"]

T = TypeVar("T")

_EXIT_FAILED = 1
_NAME = "smoltbot api-keys"


class _Settings(msgspec.Struct, frozen=True, kw_only=True, rename="upper"):
    database_url: PostgresUrl


def _fail(message: str) -> NoReturn:
    click.echo(f"{_NAME}: {message}", err=True)
    sys.exit(_EXIT_FAILED)


def _run(database_url: str | None, work: Callable[[AsyncConnection[Any]], Awaitable[T]]) -> T:
    """``work`` on one autocommit connection to ``DATABASE_URL`` (or ``--database-url``)."""
    given = {} if database_url is None else {"DATABASE_URL": database_url}
    settings = load_settings_or_exit(_Settings, "cli", given)  # exits 2 when bad

    async def main() -> T:
        conn = await AsyncConnection.connect(
            settings.database_url, autocommit=True, connect_timeout=5
        )
        async with conn:
            await conn.execute("SET TIME ZONE 'UTC'")  # the table shows times in UTC
            return await work(conn)

    try:
        return asyncio.run(main())
    except psycopg.errors.UndefinedTable:
        _fail("the api_keys table does not exist: run `smoltbot migrate` first")


def _public(row: ApiKey) -> dict[str, object]:
    """A key as shown: never the key, never its hash."""
    return {
        "id": row.id,
        "name": row.name,
        "scope": row.scope,
        "key_prefix": row.key_prefix,
        "created_at": row.created_at,
        "last_used_at": row.last_used_at,
        "revoked_at": row.revoked_at,
    }


def _when(value: object) -> str:
    return "-" if value is None else str(value)[:19].replace("T", " ")


_database_url = click.option(
    "--database-url",
    envvar="DATABASE_URL",
    metavar="URL",
    help="PostgreSQL URL (postgresql://user:pass@host:5432/db). Default: $DATABASE_URL.",
)
_json = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


@click.group(
    "api-keys",
    short_help="Create, list and revoke API keys of the api.",
    context_settings={"help_option_names": ["-h", "--help"]},
)
def api_keys_group() -> None:
    """API keys for the api's /v1 routes (Authorization: Bearer <key>).

    \b
    Scopes: read (GET routes), write (also changes to agents, cards and
    containment), admin (everything, including API keys and webhooks).
    Keys are stored as SHA-256 hashes only: a key is printed once, by create.
    These commands write PostgreSQL directly (DATABASE_URL); the api sees a
    revocation within SMOLTBOT_API_KEY_CACHE_TTL_S (at most 5 s).
    """


@api_keys_group.command("create")
@click.option(
    "--scope",
    type=click.Choice(api_keys.SCOPES),
    required=True,
    help="What the key may do: read, write or admin.",
)
@click.option(
    "--name",
    default="Default",
    show_default=True,
    help=f"A label for people (1-{api_keys.MAX_NAME_LENGTH} characters).",
)
@_json
@_database_url
def create_command(
    scope: api_keys.Scope, name: str, as_json: bool, database_url: str | None
) -> None:
    """Create a key and print it, once: store it now, it cannot be shown again.

    \b
    The key alone goes to stdout (the note about it to stderr), so
      KEY=$(smoltbot api-keys create --scope read --name ci)
    captures just the key. With --json: {id, name, scope, key_prefix,
    created_at, last_used_at, revoked_at, key}.
    """
    if not 1 <= len(name) <= api_keys.MAX_NAME_LENGTH:
        raise click.BadParameter(
            f"must be 1 to {api_keys.MAX_NAME_LENGTH} characters", param_hint="--name"
        )
    new = _run(database_url, lambda conn: api_keys.create_key(conn, name, scope))
    if as_json:
        echo_json({**_public(new.row), "key": new.key})
        return
    click.echo(new.key)
    click.echo(
        f"created API key {new.row.id} (scope {new.row.scope}, name {new.row.name!r}); "
        "this is the only time the key is shown",
        err=True,
    )


@api_keys_group.command("list")
@_json
@_database_url
def list_command(as_json: bool, database_url: str | None) -> None:
    """List every key, newest first, revoked ones too (never the keys themselves).

    With --json: a list of {id, name, scope, key_prefix, created_at,
    last_used_at, revoked_at}.
    """
    rows = _run(database_url, api_keys.list_keys)
    if as_json:
        echo_json([_public(r) for r in rows])
        return
    print_rich_table(
        ["ID", "NAME", "SCOPE", "PREFIX", "CREATED", "LAST USED", "REVOKED"],
        [
            (
                r.id,
                r.name,
                r.scope,
                r.key_prefix + "...",
                _when(r.created_at),
                _when(r.last_used_at),
                _when(r.revoked_at),
            )
            for r in rows
        ],
        caption=f"{len(rows)} key(s); times in UTC" if rows else "no API keys yet",
    )


@api_keys_group.command("revoke")
@click.argument("key_id", metavar="ID")
@_json
@_database_url
def revoke_command(key_id: str, as_json: bool, database_url: str | None) -> None:
    """Revoke the key ID (as `list` shows it, e.g. ak-0123456789abcdef).

    \b
    The api answers 401 to it within SMOLTBOT_API_KEY_CACHE_TTL_S (at most
    5 s). Revoking a revoked key changes nothing (exit 0); an unknown ID
    exits 1.
    """
    row = _run(database_url, lambda conn: api_keys.revoke_key(conn, key_id))
    if row is None:
        _fail(f"no API key with id {key_id!r} (see `smoltbot api-keys list`)")
    if as_json:
        echo_json(_public(row))
        return
    click.echo(f"revoked API key {row.id} ({row.name!r}, scope {row.scope})")
