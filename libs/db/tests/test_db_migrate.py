from __future__ import annotations

import asyncio
import shutil
from importlib import resources
from pathlib import Path

import psycopg
import pytest
from smoltbot_db import (
    ChecksumMismatchError,
    DatabaseUnavailableError,
    MigrationFailedError,
    load_migrations,
    run_migrations,
)


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
    return {r[0] for r in rows}


def _packaged_dir(tmp_path: Path) -> Path:
    src = resources.files("smoltbot_db") / "migrations"
    dst = tmp_path / "migrations"
    dst.mkdir()
    for entry in src.iterdir():
        if entry.name.endswith(".sql"):
            (dst / entry.name).write_text(entry.read_text())
    return dst


def _write_sql(directory: Path, files: dict[str, str]) -> Path:
    """Write ``files`` (file name: SQL) into ``directory``, created if missing; the directory."""
    directory.mkdir(exist_ok=True)
    for name, sql in files.items():
        (directory / name).write_text(sql)
    return directory


def test_packaged_migrations_are_found_in_name_order() -> None:
    names = [m.filename for m in load_migrations()]
    assert names
    assert names == sorted(names)
    assert "0001_core.sql" in names


async def test_apply_then_rerun_skips(fresh_db_url: str) -> None:
    lines: list[str] = []
    first = await run_migrations(fresh_db_url, progress=lines.append)
    total = len(load_migrations())
    assert first.applied == total
    assert first.skipped == 0
    assert any("applied 0001_core.sql" in line for line in lines)
    assert {
        "agents",
        "exchanges",
        "traces",
        "integrity_checkpoints",
        "schema_migrations",
    } <= _tables(fresh_db_url)
    with psycopg.connect(fresh_db_url) as conn:
        rows = conn.execute("SELECT filename, checksum FROM schema_migrations").fetchall()
    assert {r[0]: r[1] for r in rows} == {m.filename: m.checksum for m in load_migrations()}

    second = await run_migrations(fresh_db_url)
    assert second.applied == 0
    assert second.skipped == total
    assert all(f.applied_at for f in second.files)


async def test_dry_run_applies_nothing(fresh_db_url: str, tmp_path: Path) -> None:
    report = await run_migrations(fresh_db_url, dry_run=True)
    assert report.dry_run
    assert report.pending == len(load_migrations())
    assert report.applied == 0
    assert _tables(fresh_db_url) == set()

    # After a real run, a dry run lists only the new file as pending.
    directory = _packaged_dir(tmp_path)
    await run_migrations(fresh_db_url, directory=directory)
    (directory / "9999_extra.sql").write_text("CREATE TABLE extra (id int);")
    report = await run_migrations(fresh_db_url, directory=directory, dry_run=True)
    assert [(f.filename, f.status) for f in report.files if f.status != "skipped"] == [
        ("9999_extra.sql", "pending")
    ]
    assert "extra" not in _tables(fresh_db_url)


async def test_edited_applied_migration_fails_naming_the_file(
    fresh_db_url: str, tmp_path: Path
) -> None:
    directory = _write_sql(tmp_path / "m", {"0001_a.sql": "CREATE TABLE a (id int);"})
    await run_migrations(fresh_db_url, directory=directory)

    edits = {
        "0001_a.sql": "CREATE TABLE a (id int, extra text);",
        "0002_b.sql": "CREATE TABLE b (id int);",
    }
    _write_sql(directory, edits)
    with pytest.raises(ChecksumMismatchError, match=r"0001_a\.sql") as info:
        await run_migrations(fresh_db_url, directory=directory)
    assert info.value.filenames == ["0001_a.sql"]
    # Nothing after the check ran: the new file was not applied.
    assert "b" not in _tables(fresh_db_url)


async def test_failing_file_rolls_back_and_stops(fresh_db_url: str, tmp_path: Path) -> None:
    files = {
        "0001_ok.sql": "CREATE TABLE ok1 (id int);",
        "0002_bad.sql": "CREATE TABLE half (id int);\nSELEC 1;",
        "0003_later.sql": "CREATE TABLE later (id int);",
    }
    directory = _write_sql(tmp_path / "m", files)
    with pytest.raises(MigrationFailedError, match=r"0002_bad\.sql") as info:
        await run_migrations(fresh_db_url, directory=directory)
    assert info.value.filename == "0002_bad.sql"
    tables = _tables(fresh_db_url)
    assert "ok1" in tables
    assert "half" not in tables  # its transaction rolled back together with the tracking row
    assert "later" not in tables
    with psycopg.connect(fresh_db_url) as conn:
        names = [r[0] for r in conn.execute("SELECT filename FROM schema_migrations")]
    assert names == ["0001_ok.sql"]


async def test_concurrent_runners_serialize_on_the_lock(fresh_db_url: str, tmp_path: Path) -> None:
    # Slow enough that, without the lock, both runners would execute the file at once and the
    # second would fail on the duplicate table / tracking row.
    slow = {"0001_slow.sql": "SELECT pg_sleep(0.5);\nCREATE TABLE slow (id int);"}
    directory = _write_sql(tmp_path / "m", slow)
    lines_a: list[str] = []
    lines_b: list[str] = []
    a, b = await asyncio.gather(
        run_migrations(fresh_db_url, directory=directory, progress=lines_a.append),
        run_migrations(fresh_db_url, directory=directory, progress=lines_b.append),
    )
    assert sorted([a.applied, b.applied]) == [0, 1]
    assert sorted([a.skipped, b.skipped]) == [0, 1]
    waited = [line for line in lines_a + lines_b if "holds the lock" in line]
    assert len(waited) == 1


async def test_unreachable_database_fails_after_bounded_retries() -> None:
    lines: list[str] = []
    with pytest.raises(DatabaseUnavailableError, match="after 2 attempts"):
        await run_migrations(
            "postgresql://postgres@127.0.0.1:1/postgres",
            connect_attempts=2,
            connect_wait_s=0.05,
            progress=lines.append,
        )
    assert len([line for line in lines if "not reachable" in line]) == 2


def test_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_migrations(tmp_path / "nope")


async def test_applied_file_missing_on_disk_is_reported_not_fatal(
    fresh_db_url: str, tmp_path: Path
) -> None:
    files = {"0001_a.sql": "CREATE TABLE a (id int);", "0002_b.sql": "CREATE TABLE b (id int);"}
    directory = _write_sql(tmp_path / "m", files)
    await run_migrations(fresh_db_url, directory=directory)
    (directory / "0002_b.sql").unlink()
    report = await run_migrations(fresh_db_url, directory=directory)
    assert [(f.filename, f.status) for f in report.files] == [
        ("0001_a.sql", "skipped"),
        ("0002_b.sql", "missing"),
    ]
    shutil.rmtree(directory)
