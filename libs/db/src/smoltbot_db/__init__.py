"""PostgreSQL access shared by the services: the pool, idempotent batched upserts, migrations."""

from smoltbot_db.errors import (
    ChecksumMismatchError,
    DatabaseUnavailableError,
    DbError,
    MigrationError,
    MigrationFailedError,
)
from smoltbot_db.migrate import (
    FileResult,
    Migration,
    MigrationReport,
    load_migrations,
    run_migrations,
)
from smoltbot_db.pool import Pool, create_pool, ping, wait_until_reachable
from smoltbot_db.upsert import DEFAULT_COPY_THRESHOLD, UpsertSpec, upsert

__all__ = [
    "DEFAULT_COPY_THRESHOLD",
    "ChecksumMismatchError",
    "DatabaseUnavailableError",
    "DbError",
    "FileResult",
    "Migration",
    "MigrationError",
    "MigrationFailedError",
    "MigrationReport",
    "Pool",
    "UpsertSpec",
    "create_pool",
    "load_migrations",
    "ping",
    "run_migrations",
    "upsert",
    "wait_until_reachable",
]
