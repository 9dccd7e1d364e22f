"""Settings of the persister process (architecture §8), read once in ``__main__``."""

from __future__ import annotations

from typing import Annotated

import msgspec
from smoltbot_config import BatchSize, BusSettings, Port, PostgresUrl

__all__ = ["PersisterSettings"]


class PersisterSettings(BusSettings, frozen=True, kw_only=True):
    """``DATABASE_URL`` is required; the rest has defaults suitable for one replica."""

    database_url: PostgresUrl
    port: Port = msgspec.field(default=9103, name="SMOLTBOT_PERSISTER_PORT")
    # Probes must be reachable from the kubelet.
    host: str = msgspec.field(default="0.0.0.0", name="SMOLTBOT_PERSISTER_HOST")  # noqa: S104
    batch_size: BatchSize = msgspec.field(default=200, name="SMOLTBOT_PERSISTER_BATCH_SIZE")
    # PostgreSQL connections held by the process.
    pool_size: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = msgspec.field(
        default=4, name="SMOLTBOT_PERSISTER_POOL_SIZE"
    )
    # Retention (docs/operations.md, "Retention"): rows older than this many days are deleted
    # from the event tables by a background task; 0 keeps everything.
    retention_days: Annotated[int, msgspec.Meta(ge=0, le=36_500)] = msgspec.field(
        default=90, name="SMOLTBOT_RETENTION_DAYS"
    )
    retention_interval_s: Annotated[float, msgspec.Meta(ge=1, le=604_800)] = msgspec.field(
        default=3600.0, name="SMOLTBOT_RETENTION_INTERVAL_S"
    )
    retention_batch: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = msgspec.field(
        default=5000, name="SMOLTBOT_RETENTION_BATCH"
    )
