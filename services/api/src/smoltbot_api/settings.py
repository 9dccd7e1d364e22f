"""Settings of the api service, read once from the environment at start (architecture §8)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

import msgspec
from smoltbot_config import (
    BusSettings,
    Port,
    PostgresUrl,
    Seconds,
    SettingsCheckError,
    explained,
    load_settings,
    load_settings_or_exit,
)

__all__ = [
    "ADMIN_TOKEN_MIN_LENGTH",
    "ApiSettings",
    "load_api_settings",
    "load_api_settings_or_exit",
]

ADMIN_TOKEN_MIN_LENGTH = 16

AdminToken = Annotated[
    str,
    explained(
        f"must be at least {ADMIN_TOKEN_MIN_LENGTH} characters", min_length=ADMIN_TOKEN_MIN_LENGTH
    ),
]
PoolSize = Annotated[int, msgspec.Meta(ge=0, le=1000)]


class ApiSettings(BusSettings, frozen=True, kw_only=True):
    """Everything the api reads from the environment; frozen and passed down explicitly."""

    database_url: PostgresUrl
    admin_token: AdminToken = msgspec.field(name="SMOLTBOT_ADMIN_TOKEN")
    # A container service listens on every interface.
    host: str = msgspec.field(default="0.0.0.0", name="SMOLTBOT_API_HOST")  # noqa: S104
    port: Port = msgspec.field(default=8788, name="SMOLTBOT_API_PORT")
    db_pool_min_size: PoolSize = msgspec.field(default=1, name="SMOLTBOT_API_DB_POOL_MIN_SIZE")
    db_pool_max_size: Annotated[int, msgspec.Meta(ge=1, le=1000)] = msgspec.field(
        default=10, name="SMOLTBOT_API_DB_POOL_MAX_SIZE"
    )
    # How long a request waits for a pooled connection before answering 503.
    db_pool_timeout_s: Seconds = msgspec.field(default=5.0, name="SMOLTBOT_API_DB_POOL_TIMEOUT_S")
    # Requests per minute each API key may make (0: no limit); the admin token is not limited.
    rate_limit_per_min: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)] = msgspec.field(
        default=600, name="SMOLTBOT_API_RATE_LIMIT_PER_MIN"
    )
    # Requests a key may make at once, above the steady rate (the token bucket's size).
    rate_limit_burst: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = msgspec.field(
        default=100, name="SMOLTBOT_API_RATE_LIMIT_BURST"
    )
    # How long a key lookup is cached in process: a revoked key works at most this much longer.
    key_cache_ttl_s: Annotated[float, msgspec.Meta(ge=0, le=5)] = msgspec.field(
        default=5.0, name="SMOLTBOT_API_KEY_CACHE_TTL_S"
    )

    def __post_init__(self) -> None:
        if self.db_pool_min_size > self.db_pool_max_size:
            raise SettingsCheckError(db_pool_min_size="must not exceed {db_pool_max_size}")


def load_api_settings(environ: Mapping[str, str] | None = None) -> ApiSettings:
    """:class:`ApiSettings` from ``environ`` (default: the process environment)."""
    return load_settings(ApiSettings, environ)


def load_api_settings_or_exit() -> ApiSettings:
    """:class:`ApiSettings`, or one line naming every bad variable and exit 2."""
    return load_settings_or_exit(ApiSettings, "api")
