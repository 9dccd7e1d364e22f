"""``smoltbot migrate`` (cli/src/smoltbot_cli/migrate.py) end to end against real PostgreSQL."""

from __future__ import annotations

import json
import re
from pathlib import Path

import psycopg
from click.testing import CliRunner
from smoltbot_cli.migrate import migrate_command


def run(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(migrate_command, list(args), env=env or {"DATABASE_URL": ""})


def test_help_explains_the_command():
    result = run("--help")
    assert result.exit_code == 0
    for word in ("--dry-run", "--json", "DATABASE_URL", "advisory lock", "checksum"):
        assert word in result.output


def test_malformed_url_exits_2_naming_database_url_without_echoing_it():
    result = run(env={"DATABASE_URL": "mysql://secret@host/db"})
    assert result.exit_code == 2
    assert "DATABASE_URL" in result.stderr
    assert "secret" not in result.output + result.stderr


def test_missing_url_exits_2():
    result = run()
    assert result.exit_code == 2
    assert "DATABASE_URL (required" in result.stderr


def test_dry_run_then_apply_then_json(fresh_db_url: str):
    dry = run("--database-url", fresh_db_url, "--dry-run")
    assert dry.exit_code == 0, dry.output
    # Column widths follow the longest file name: match the gap, not its width.
    assert re.search(r"0001_core\.sql +pending", dry.stdout)
    assert "nothing was changed" in dry.stdout
    with psycopg.connect(fresh_db_url) as conn:
        assert conn.execute("SELECT to_regclass('agents')").fetchone() == (None,)

    applied = run(env={"DATABASE_URL": fresh_db_url})
    assert applied.exit_code == 0, applied.output
    assert re.search(r"0001_core\.sql +applied", applied.stdout)

    again = run("--json", env={"DATABASE_URL": fresh_db_url})
    assert again.exit_code == 0
    payload = json.loads(again.stdout)  # progress lines went to stderr
    assert payload["ok"] is True
    assert payload["applied"] == 0
    assert payload["skipped"] >= 1
    assert {f["status"] for f in payload["files"]} == {"skipped"}


def test_checksum_failure_exits_1_naming_the_file(fresh_db_url: str, tmp_path: Path):
    (tmp_path / "0001_x.sql").write_text("CREATE TABLE x (id int);")
    args = ("--database-url", fresh_db_url, "--migrations-dir", str(tmp_path))
    assert run(*args).exit_code == 0
    (tmp_path / "0001_x.sql").write_text("CREATE TABLE x (id bigint);")
    result = run(*args, "--json")
    assert result.exit_code == 1
    assert "0001_x.sql" in result.stderr
    assert json.loads(result.stdout)["ok"] is False


def test_unreachable_database_exits_1():
    result = run("--database-url", "postgresql://postgres@127.0.0.1:1/x", "--connect-attempts", "1")
    assert result.exit_code == 1
    assert "could not connect to PostgreSQL after 1 attempts" in result.stderr
