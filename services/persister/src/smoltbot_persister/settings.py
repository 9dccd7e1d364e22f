"""Settings of the persister process (architecture §8), read once in ``__main__``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, ClassVar

import msgspec
from smoltbot_config import CommonSettings, Port, PostgresUrl, load_settings

__all__ = ["PersisterSettings", "load_persister_settings"]

PositiveInt = Annotated[int, msgspec.Meta(ge=1, le=10_000)]


class PersisterSettings(CommonSettings, frozen=True, kw_only=True):
    """``DATABASE_URL`` is required; the rest has defaults suitable for one replica."""

    __env_names__: ClassVar[dict[str, str]] = {
        "database_url": "DATABASE_URL",
        "port": "SMOLTBOT_PERSISTER_PORT",
        "host": "SMOLTBOT_PERSISTER_HOST",
        "batch_size": "SMOLTBOT_PERSISTER_BATCH_SIZE",
        "pool_size": "SMOLTBOT_PERSISTER_POOL_SIZE",
    }

    database_url: PostgresUrl
    port: Port = 9103
    host: str = "0.0.0.0"  # noqa: S104 - probes must be reachable from the kubelet
    batch_size: PositiveInt = 200
    pool_size: PositiveInt = 4


def load_persister_settings(environ: Mapping[str, str] | None = None) -> PersisterSettings:
    """Settings from the environment (every bad or missing variable is named)."""
    return load_settings(PersisterSettings, environ)
