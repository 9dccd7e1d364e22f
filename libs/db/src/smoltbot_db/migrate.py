"""The SQL migration runner behind ``smoltbot migrate`` (architecture §7, self-hosting.md §1.8).

* Files ``migrations/*.sql`` (package data, or any directory) are applied in name order, each in
  its own transaction together with its row in ``schema_migrations``; a failing file leaves no
  trace and stops the run.
* A session-level advisory lock serialises runners (a compose one-shot and a Helm hook, or two
  replicas of a hook, can start at once); the second waits and then finds nothing to do.
* Every file's SHA-256 is recorded. An applied file whose content changed fails the run before
  anything is applied, naming the file: applied migrations are immutable history.
* Applied rows with no file on disk are reported, not fatal: an older release (same major) must
  still be able to run against a newer schema (rollback without restore).
* The database may not be up yet (compose starts everything at once): connecting is retried a
  bounded number of times, then the run fails with :class:`DatabaseUnavailableError`.

Migration files must not contain transaction control (``BEGIN``/``COMMIT``) or statements that
cannot run in a transaction (``CREATE INDEX CONCURRENTLY``).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Literal

import psycopg
from psycopg.rows import TupleRow
from tenacity import (
    AsyncRetrying,
    RetryError,
    retry_if_exception_type,
    stop_after_attempt,
    wait_fixed,
)

from smoltbot_db.errors import (
    ChecksumMismatchError,
    DatabaseUnavailableError,
    MigrationFailedError,
)

__all__ = [
    "LOCK_KEY",
    "FileResult",
    "Migration",
    "MigrationReport",
    "load_migrations",
    "run_migrations",
]

# pg_advisory_lock key shared by every runner: int64 from a fixed name (never change it).
LOCK_KEY = int.from_bytes(
    hashlib.sha256(b"smoltbot:schema_migrations").digest()[:8], "big", signed=True
)

Status = Literal["applied", "skipped", "pending", "missing"]
Progress = Callable[[str], None]

_CREATE_TRACKING = b"""
CREATE TABLE IF NOT EXISTS schema_migrations (
    filename    text PRIMARY KEY,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True)
class Migration:
    filename: str
    sql: str
    checksum: str


@dataclass(frozen=True, kw_only=True)
class FileResult:
    """One file's outcome: ``applied`` now, ``skipped`` (applied before), ``pending`` (dry run),
    ``missing`` (recorded as applied but no longer on disk)."""

    filename: str
    status: Status
    checksum: str
    applied_at: str | None = None
    duration_ms: float | None = None


@dataclass(frozen=True, kw_only=True)
class MigrationReport:
    dry_run: bool
    files: list[FileResult] = field(default_factory=list)

    def count(self, status: Status) -> int:
        return sum(1 for f in self.files if f.status == status)

    @property
    def applied(self) -> int:
        return self.count("applied")

    @property
    def skipped(self) -> int:
        return self.count("skipped")

    @property
    def pending(self) -> int:
        return self.count("pending")


def _checksum(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def load_migrations(directory: Path | None = None) -> list[Migration]:
    """``*.sql`` files of ``directory`` (default: the packaged migrations), in name order."""
    if directory is None:
        root = resources.files("smoltbot_db") / "migrations"
        entries = [
            (e.name, e.read_text(encoding="utf-8"))
            for e in root.iterdir()
            if e.name.endswith(".sql")
        ]
    else:
        if not directory.is_dir():
            raise FileNotFoundError(f"migration directory {directory} does not exist")
        entries = [(p.name, p.read_text(encoding="utf-8")) for p in directory.glob("*.sql")]
    return [Migration(name, text, _checksum(text)) for name, text in sorted(entries)]


async def _connect(
    url: str, attempts: int, wait_s: float, progress: Progress
) -> psycopg.AsyncConnection[TupleRow]:
    """Connect, retrying while the server is not reachable yet; bounded so a Job fails visibly."""
    tries = 0

    async def attempt() -> psycopg.AsyncConnection[TupleRow]:
        nonlocal tries
        tries += 1
        try:
            return await psycopg.AsyncConnection.connect(url, autocommit=True, connect_timeout=5)
        except psycopg.OperationalError as exc:
            first = (str(exc).strip().splitlines() or [""])[0]
            progress(f"database not reachable (attempt {tries}/{attempts}): {first}")
            raise

    try:
        async for step in AsyncRetrying(
            stop=stop_after_attempt(attempts),
            wait=wait_fixed(wait_s),
            retry=retry_if_exception_type(psycopg.OperationalError),
        ):
            with step:
                return await attempt()
    except RetryError as exc:
        last = exc.last_attempt.exception()
        first = (str(last).strip().splitlines() or [""])[0]
        raise DatabaseUnavailableError(
            f"could not connect to PostgreSQL after {attempts} attempts "
            f"(~{(attempts - 1) * wait_s:.0f}s): {first}. "
            "Check DATABASE_URL and that the server is up"
        ) from last
    raise AssertionError("unreachable")  # pragma: no cover


async def _lock(conn: psycopg.AsyncConnection[TupleRow], progress: Progress) -> None:
    cur = await conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,))
    row = await cur.fetchone()
    if row is not None and row[0]:
        return
    progress("another migration runner holds the lock; waiting for it to finish")
    await conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))


async def _applied(conn: psycopg.AsyncConnection[TupleRow]) -> dict[str, tuple[str, str]]:
    cur = await conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL")
    row = await cur.fetchone()
    if row is None or not row[0]:
        return {}
    cur = await conn.execute("SELECT filename, checksum, applied_at FROM schema_migrations")
    return {name: (checksum, at.isoformat()) for name, checksum, at in await cur.fetchall()}


async def run_migrations(
    url: str,
    *,
    directory: Path | None = None,
    dry_run: bool = False,
    connect_attempts: int = 15,
    connect_wait_s: float = 2.0,
    progress: Progress | None = None,
) -> MigrationReport:
    """Apply pending migrations (or, with ``dry_run``, only list them) and report every file.

    Raises :class:`ChecksumMismatchError`, :class:`MigrationFailedError` or
    :class:`DatabaseUnavailableError`; files applied before a failure stay applied.
    """
    say: Progress = progress or (lambda _line: None)
    migrations = load_migrations(directory)
    conn = await _connect(url, connect_attempts, connect_wait_s, say)
    try:
        await _lock(conn, say)
        try:
            if not dry_run:
                await conn.execute(_CREATE_TRACKING)
            applied = await _applied(conn)
            on_disk = {m.filename for m in migrations}
            changed = [
                m.filename
                for m in migrations
                if m.filename in applied and applied[m.filename][0] != m.checksum
            ]
            if changed:
                raise ChecksumMismatchError(changed)

            results: list[FileResult] = []
            last_applied = max(applied, default="")
            for m in migrations:
                if m.filename in applied:
                    results.append(
                        FileResult(
                            filename=m.filename,
                            status="skipped",
                            checksum=m.checksum,
                            applied_at=applied[m.filename][1],
                        )
                    )
                    continue
                if m.filename < last_applied:
                    say(f"warning: {m.filename} sorts before already-applied {last_applied}")
                if dry_run:
                    say(f"would apply {m.filename}")
                    results.append(
                        FileResult(filename=m.filename, status="pending", checksum=m.checksum)
                    )
                    continue
                results.append(await _apply(conn, m, say))
            for name in sorted(set(applied) - on_disk):
                say(f"warning: {name} is recorded as applied but has no file here (newer release?)")
                results.append(
                    FileResult(
                        filename=name,
                        status="missing",
                        checksum=applied[name][0],
                        applied_at=applied[name][1],
                    )
                )
            return MigrationReport(dry_run=dry_run, files=results)
        finally:
            if not conn.closed:
                await conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    finally:
        await conn.close()


async def _apply(
    conn: psycopg.AsyncConnection[TupleRow], m: Migration, say: Progress
) -> FileResult:
    say(f"applying {m.filename} ...")
    started = time.perf_counter()
    try:
        async with conn.transaction():
            # No parameters: psycopg sends the file as one simple query (several statements).
            await conn.execute(m.sql.encode())
            cur = await conn.execute(
                "INSERT INTO schema_migrations (filename, checksum) VALUES (%s, %s) "
                "RETURNING applied_at",
                (m.filename, m.checksum),
            )
            row = await cur.fetchone()
    except psycopg.Error as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        say(f"FAILED {m.filename}: {reason}")
        raise MigrationFailedError(m.filename, reason) from exc
    took = round((time.perf_counter() - started) * 1000, 1)
    say(f"applied {m.filename} in {took} ms")
    return FileResult(
        filename=m.filename,
        status="applied",
        checksum=m.checksum,
        applied_at=row[0].isoformat() if row else None,
        duration_ms=took,
    )
