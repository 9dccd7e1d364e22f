"""``smoltbot api-keys`` (cli/src/smoltbot_cli/api_keys.py) against a private, migrated database."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner, Result
from smoltbot_cli.main import cli
from smoltbot_db.api_keys import hash_key


@pytest.fixture(scope="module")
def keys_db(migrated_database: Callable[[str], str]) -> str:
    return migrated_database("cli")


@pytest.fixture
def url(keys_db: str) -> str:
    with psycopg.connect(keys_db, autocommit=True) as conn:
        conn.execute("TRUNCATE api_keys")
    return keys_db


def run(url: str | None, *args: str) -> Result:
    env = {"DATABASE_URL": url or ""}
    return CliRunner().invoke(cli, ["api-keys", *args], env=env)


def ok_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_help_explains_scopes_and_storage() -> None:
    result = CliRunner().invoke(cli, ["api-keys", "--help"])
    assert result.exit_code == 0
    for word in ("read", "write", "admin", "SHA-256", "DATABASE_URL", "create", "revoke"):
        assert word in result.output
    create_help = CliRunner().invoke(cli, ["api-keys", "create", "--help"]).output
    assert "--scope" in create_help
    assert "only" in create_help or "once" in create_help


def test_create_list_revoke(url: str) -> None:
    created = run(url, "create", "--scope", "read", "--name", "ci")
    assert created.exit_code == 0, created.output
    key = created.stdout.strip()
    assert key.startswith("sk-smolt-")
    assert "\n" not in key  # stdout is the key alone
    assert "only time" in created.stderr

    made = ok_json(run(url, "create", "--scope", "admin", "--json"))
    assert made["key"].startswith("sk-smolt-")
    assert (made["scope"], made["name"]) == ("admin", "Default")

    with psycopg.connect(url) as conn:
        stored = conn.execute("SELECT key_hash, scope FROM api_keys ORDER BY scope").fetchall()
    assert sorted(h for h, _ in stored) == sorted([hash_key(key), hash_key(made["key"])])

    listed = ok_json(run(url, "list", "--json"))
    assert [k["id"] for k in listed][0] == made["id"]  # newest first
    assert {k["scope"] for k in listed} == {"read", "admin"}
    table = run(url, "list")
    assert table.exit_code == 0
    assert made["id"] in table.stdout
    assert "ci" in table.stdout
    for output in (table.stdout, json.dumps(listed)):
        assert key not in output
        assert made["key"] not in output
        assert hash_key(key) not in output

    revoked = ok_json(run(url, "revoke", made["id"], "--json"))
    assert revoked["revoked_at"] is not None
    again = run(url, "revoke", made["id"])  # idempotent
    assert again.exit_code == 0
    assert made["id"] in again.stdout
    listed = {k["id"]: k for k in ok_json(run(url, "list", "--json"))}
    assert listed[made["id"]]["revoked_at"] == revoked["revoked_at"]


def test_unknown_id_exits_1_with_one_line(url: str) -> None:
    result = run(url, "revoke", "ak-0000000000000000")
    assert result.exit_code == 1
    assert result.stderr.strip().count("\n") == 0
    assert "no API key with id 'ak-0000000000000000'" in result.stderr


def test_bad_scope_and_name_are_usage_errors(url: str) -> None:
    assert run(url, "create", "--scope", "root").exit_code == 2
    assert run(url, "create").exit_code == 2  # --scope is required
    assert run(url, "create", "--scope", "read", "--name", "x" * 101).exit_code == 2


def test_missing_or_bad_database_url_exits_2() -> None:
    assert run(None, "list").exit_code == 2
    result = CliRunner().invoke(
        cli, ["api-keys", "list"], env={"DATABASE_URL": "mysql://secret@host/db"}
    )
    assert result.exit_code == 2
    assert "DATABASE_URL" in result.stderr
    assert "secret" not in result.output + result.stderr


def test_unmigrated_database_says_run_migrate(fresh_db_url: str) -> None:
    result = run(fresh_db_url, "list")
    assert result.exit_code == 1
    assert "smoltbot migrate" in result.stderr


def test_unreachable_database_is_one_line_exit_1() -> None:
    result = run("postgresql://postgres@127.0.0.1:1/x", "list")
    assert result.exit_code == 1
    assert "cannot reach PostgreSQL" in result.stderr
    assert "DATABASE_URL" in result.stderr
