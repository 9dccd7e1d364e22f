"""``smoltbot retention run``: delete (or count) event rows past the retention period by hand.

The same job the persister runs every ``SMOLTBOT_RETENTION_INTERVAL_S`` (``smoltbot_db.
run_retention``), with the same advisory lock: while a persister replica is trimming, this
command reports that and does nothing.
"""

from __future__ import annotations

import asyncio
import json
import sys

import click
import msgspec
import psycopg
from smoltbot_config import PostgresUrl, load_settings_or_exit
from smoltbot_db import RetentionReport, run_retention

from smoltbot_cli.tables import print_rich_table

__all__ = ["retention_group"]

_EXIT_FAILED = 1


class RetentionCliSettings(msgspec.Struct, frozen=True, kw_only=True, rename="upper"):
    """Validated like the persister's own ``DATABASE_URL``; ``--database-url`` stands in for it."""

    database_url: PostgresUrl


@click.group("retention", context_settings={"help_option_names": ["-h", "--help"]})
def retention_group() -> None:
    """Row retention of the event tables (docs/operations.md, "Retention")."""


async def _run(url: str, days: int, batch: int, dry_run: bool) -> RetentionReport:
    async with await psycopg.AsyncConnection.connect(
        url, application_name="smoltbot-cli-retention", connect_timeout=10
    ) as conn:
        return await run_retention(conn, days=days, batch=batch, pause_s=0.05, dry_run=dry_run)


@retention_group.command("run")
@click.option(
    "--database-url",
    envvar="DATABASE_URL",
    metavar="URL",
    help="PostgreSQL URL. Default: $DATABASE_URL.",
)
@click.option(
    "--days",
    envvar="SMOLTBOT_RETENTION_DAYS",
    default=90,
    show_default=True,
    type=click.IntRange(0, 36_500),
    help="Delete rows older than this many days; 0 keeps everything. "
    "Default: $SMOLTBOT_RETENTION_DAYS, else 90.",
)
@click.option(
    "--batch",
    envvar="SMOLTBOT_RETENTION_BATCH",
    default=5000,
    show_default=True,
    type=click.IntRange(1, 100_000),
    help="Rows per DELETE statement (one short transaction each).",
)
@click.option("--dry-run", is_flag=True, help="Count the rows that would go; delete nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def run_command(
    database_url: str | None, days: int, batch: int, dry_run: bool, as_json: bool
) -> None:
    """Delete exchanges, traces, verifications, integrity checkpoints and drift alerts older
    than --days, in batches. Agents, cards, api keys and the containment log are kept.

    \b
    Exit codes: 0 done (also: disabled, or another run holds the lock), 1 failed,
    2 bad configuration.
    """
    given = {} if database_url is None else {"DATABASE_URL": database_url}
    settings = load_settings_or_exit(RetentionCliSettings, "retention", given)
    if days == 0:
        if as_json:
            click.echo(json.dumps({"ok": True, "disabled": True, "tables": {}}))
        else:
            click.echo(
                "retention is disabled (--days 0 / SMOLTBOT_RETENTION_DAYS=0): nothing to do"
            )
        return
    try:
        report = asyncio.run(_run(settings.database_url, days, batch, dry_run))
    except psycopg.OperationalError:
        raise  # the CLI group reports an unreachable database (exit 1)
    except psycopg.Error as exc:
        click.echo(f"smoltbot retention run: {exc}", err=True)
        sys.exit(_EXIT_FAILED)
    if as_json:
        payload = {
            "ok": True,
            "disabled": False,
            "dry_run": report.dry_run,
            "ran": report.ran,
            "cutoff": report.cutoff.isoformat(),
            "tables": report.rows,
            "total": report.total,
            "seconds": round(report.seconds, 3),
        }
        click.echo(json.dumps(payload))
        return
    if not report.ran:
        click.echo("another retention run holds the lock (a persister replica?): nothing done")
        return
    verb = "would delete" if dry_run else "deleted"
    print_rich_table(
        ["table", verb],
        [(table, n) for table, n in report.rows.items()],
        title=f"Rows older than {report.cutoff:%Y-%m-%d %H:%M:%S}Z ({days} days)",
        caption=f"{verb} {report.total} rows in {report.seconds:.2f} s"
        + (" (dry run: nothing changed)" if dry_run else ""),
        numeric=[verb],
    )
