"""``smoltbot migrate``: apply the PostgreSQL schema (architecture §7).

Run once before new service versions serve: a compose one-shot and a Helm pre-install /
pre-upgrade hook. Safe to run any number of times and from several places at once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from pathlib import Path

import click
import msgspec
from smoltbot_config import PostgresUrl, load_settings_or_exit
from smoltbot_db import DbError, MigrationReport, run_migrations

__all__ = ["migrate_command"]

_EXIT_FAILED = 1


class MigrateSettings(msgspec.Struct, frozen=True, kw_only=True, rename="upper"):
    """Validated like the services' own ``DATABASE_URL``; ``--database-url`` stands in for it."""

    database_url: PostgresUrl


def _table(report: MigrationReport) -> str:
    rows = [("FILE", "STATUS", "APPLIED AT", "CHECKSUM")]
    for f in report.files:
        rows.append((f.filename, f.status, f.applied_at or "-", f.checksum[:12]))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [
        f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}".rstrip()
        for r in rows
    ]
    verb = "would apply" if report.dry_run else "applied"
    n = report.pending if report.dry_run else report.applied
    lines.append("")
    lines.append(
        f"{verb} {n}, skipped {report.skipped} (already applied)"
        + (", nothing was changed (dry run)" if report.dry_run else "")
    )
    return "\n".join(lines)


@click.command(
    "migrate",
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.option(
    "--database-url",
    envvar="DATABASE_URL",
    metavar="URL",
    help="PostgreSQL URL (postgresql://user:pass@host:5432/db). Default: $DATABASE_URL.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="List the migrations that would be applied; change nothing.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the result as one JSON object on stdout (progress goes to stderr).",
)
@click.option(
    "--migrations-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    hidden=True,  # for tests and emergencies; the packaged migrations are the default
)
@click.option(
    "--connect-attempts",
    default=15,
    show_default=True,
    type=click.IntRange(1, 1000),
    help="Tries to reach the database (2 s apart) before giving up.",
)
def migrate_command(
    database_url: str | None,
    dry_run: bool,
    as_json: bool,
    migrations_dir: Path | None,
    connect_attempts: int,
) -> None:
    """Apply pending PostgreSQL migrations, in file-name order.

    \b
    * Each file runs in its own transaction together with its row in
      schema_migrations, so a failing file leaves nothing half-applied.
    * An advisory lock makes concurrent runs wait for each other.
    * A file that was applied and then edited stops the run (its checksum
      changed): put schema changes in a new file instead.
    * The database is waited for (--connect-attempts) so this can start
      together with PostgreSQL.

    \b
    Exit codes: 0 done (or nothing to do), 1 failed, 2 bad configuration.
    """
    given = {} if database_url is None else {"DATABASE_URL": database_url}
    settings = load_settings_or_exit(MigrateSettings, "migrate", given)  # exits 2 when bad

    def progress(line: str) -> None:
        click.echo(line, err=as_json)

    try:
        report = asyncio.run(
            run_migrations(
                settings.database_url,
                directory=migrations_dir,
                dry_run=dry_run,
                connect_attempts=connect_attempts,
                progress=progress,
            )
        )
    except (DbError, OSError) as exc:
        if as_json:
            click.echo(json.dumps({"ok": False, "error": str(exc)}))
        click.echo(f"smoltbot migrate: {exc}", err=True)
        sys.exit(_EXIT_FAILED)

    if as_json:
        payload = {
            "ok": True,
            "dry_run": report.dry_run,
            "applied": report.applied,
            "skipped": report.skipped,
            "pending": report.pending,
            "files": [dataclasses.asdict(f) for f in report.files],
        }
        click.echo(json.dumps(payload))
    else:
        click.echo(_table(report))
