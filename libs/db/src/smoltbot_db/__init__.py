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
from smoltbot_db.retention import (
    RETAINED,
    RETENTION_LOCK_KEY,
    RetainedTable,
    RetentionReport,
    run_retention,
)
from smoltbot_db.upsert import DEFAULT_COPY_THRESHOLD, UpsertSpec, upsert

__all__ = [
    "DEFAULT_COPY_THRESHOLD",
    "RETAINED",
    "RETENTION_LOCK_KEY",
    "ChecksumMismatchError",
    "DatabaseUnavailableError",
    "DbError",
    "FileResult",
    "Migration",
    "MigrationError",
    "MigrationFailedError",
    "MigrationReport",
    "Pool",
    "RetainedTable",
    "RetentionReport",
    "UpsertSpec",
    "create_pool",
    "load_migrations",
    "ping",
    "run_migrations",
    "run_retention",
    "upsert",
    "wait_until_reachable",
]
