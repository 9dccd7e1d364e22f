"""Settings of the api service, read once from the environment at start (architecture §8)."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Annotated, ClassVar

import msgspec
from smoltbot_config import CommonSettings, Port, PostgresUrl, Seconds, SettingsError, load_settings

__all__ = [
    "ADMIN_TOKEN_MIN_LENGTH",
    "ApiSettings",
    "load_api_settings",
    "load_api_settings_or_exit",
]

ADMIN_TOKEN_MIN_LENGTH = 16

AdminToken = Annotated[str, msgspec.Meta(min_length=ADMIN_TOKEN_MIN_LENGTH)]
PoolSize = Annotated[int, msgspec.Meta(ge=0, le=1000)]

# Friendlier wording than msgspec's for the checks operators trip over most.
_CUSTOM_REASONS = {
    "SMOLTBOT_ADMIN_TOKEN": f"must be at least {ADMIN_TOKEN_MIN_LENGTH} characters",
}


class ApiSettings(CommonSettings, frozen=True, kw_only=True):
    """Everything the api reads from the environment; frozen and passed down explicitly."""

    __env_names__: ClassVar[dict[str, str]] = {
        "admin_token": "SMOLTBOT_ADMIN_TOKEN",
        "host": "SMOLTBOT_API_HOST",
        "port": "SMOLTBOT_API_PORT",
        "db_pool_min_size": "SMOLTBOT_API_DB_POOL_MIN_SIZE",
        "db_pool_max_size": "SMOLTBOT_API_DB_POOL_MAX_SIZE",
        "db_pool_timeout_s": "SMOLTBOT_API_DB_POOL_TIMEOUT_S",
    }

    database_url: PostgresUrl
    admin_token: AdminToken
    host: str = "0.0.0.0"  # noqa: S104 (a container service listens on every interface)
    port: Port = 8788
    db_pool_min_size: PoolSize = 1
    db_pool_max_size: PoolSize = 10
    # How long a request waits for a pooled connection before answering 503.
    db_pool_timeout_s: Seconds = 5.0

    def __post_init__(self) -> None:
        if self.db_pool_max_size < 1:
            raise ValueError("SMOLTBOT_API_DB_POOL_MAX_SIZE must be at least 1")
        if self.db_pool_min_size > self.db_pool_max_size:
            raise ValueError(
                "SMOLTBOT_API_DB_POOL_MIN_SIZE must not exceed SMOLTBOT_API_DB_POOL_MAX_SIZE"
            )


def load_api_settings(environ: Mapping[str, str] | None = None) -> ApiSettings:
    """:func:`smoltbot_config.load_settings` with friendlier reasons for the API's own variables."""
    try:
        return load_settings(ApiSettings, environ)
    except SettingsError as exc:
        raise SettingsError(
            {
                var: reason if reason.startswith("required") else _CUSTOM_REASONS.get(var, reason)
                for var, reason in exc.problems.items()
            }
        ) from None


def load_api_settings_or_exit() -> ApiSettings:
    """:func:`load_api_settings`, but print one line and exit 2 on bad configuration."""
    try:
        return load_api_settings()
    except SettingsError as exc:
        print(f"smoltbot-api: {exc}", file=sys.stderr)  # noqa: T201
        raise SystemExit(2) from None
