"""Settings from the environment: one frozen msgspec struct per service, validated at start.

Each struct field maps to an environment variable (the field name upper-cased, unless the class
lists an override in ``__env_names__``). Every malformed variable is reported at once; the process
exits with code 2 and one line that names them, never echoing values (they may hold secrets).
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, TypeVar

import msgspec

__all__ = [
    "CommonSettings",
    "Port",
    "PositiveInt",
    "PostgresUrl",
    "RedisUrl",
    "Seconds",
    "SettingsError",
    "default_consumer_name",
    "env_names",
    "load_settings",
    "load_settings_or_exit",
]

T = TypeVar("T", bound=msgspec.Struct)

RedisUrl = Annotated[str, msgspec.Meta(pattern=r"^(redis|rediss|unix)://.+")]
PostgresUrl = Annotated[str, msgspec.Meta(pattern=r"^postgres(ql)?://.*")]
LogLevel = Annotated[str, msgspec.Meta(pattern=r"^(?i:debug|info|warning|warn|error|critical)$")]
Port = Annotated[int, msgspec.Meta(ge=1, le=65535)]
PositiveInt = Annotated[int, msgspec.Meta(ge=1)]
Seconds = Annotated[float, msgspec.Meta(gt=0, le=3600)]


class SettingsError(Exception):
    """One or more environment variables are malformed. ``problems`` maps name -> reason."""

    def __init__(self, problems: dict[str, str]) -> None:
        self.problems = problems
        detail = "; ".join(f"{name} ({reason})" for name, reason in problems.items())
        super().__init__(f"invalid configuration: {detail}")


def default_consumer_name() -> str:
    """``$POD_NAME`` when set, else ``<host>-<pid>``: two processes never share a name."""
    return os.environ.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"


class CommonSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Variables every service reads (architecture §8)."""

    __env_names__: ClassVar[dict[str, str]] = {
        "stream_prefix": "SMOLTBOT_STREAM_PREFIX",
        "consumer_name": "SMOLTBOT_CONSUMER_NAME",
        "event_key": "SMOLTBOT_EVENT_KEY",
        "event_keys_retired": "SMOLTBOT_EVENT_KEYS_RETIRED",
        "bus_max_bytes": "SMOLTBOT_BUS_MAX_BYTES",
        "bus_min_idle_ms": "SMOLTBOT_BUS_MIN_IDLE_MS",
        "bus_max_deliveries": "SMOLTBOT_BUS_MAX_DELIVERIES",
        "bus_claim_interval_s": "SMOLTBOT_BUS_CLAIM_INTERVAL_S",
        "bus_block_ms": "SMOLTBOT_BUS_BLOCK_MS",
        "bus_body_retention_s": "SMOLTBOT_BUS_BODY_RETENTION_S",
        "bus_retention_s": "SMOLTBOT_BUS_RETENTION_S",
        "bus_stale_group_s": "SMOLTBOT_BUS_STALE_GROUP_S",
        "bus_trim_interval_s": "SMOLTBOT_BUS_TRIM_INTERVAL_S",
        "stuck_after_s": "SMOLTBOT_STUCK_AFTER_S",
        "drain_timeout_s": "SMOLTBOT_DRAIN_TIMEOUT_S",
    }

    redis_url: RedisUrl = "redis://127.0.0.1:6379/0"
    stream_prefix: str = "smoltbot:"
    consumer_name: str = ""
    log_level: LogLevel = "info"
    # AES-256-GCM key (base64 of 32 bytes) for exchanges*/traces* bodies; empty = plaintext.
    event_key: str = ""
    # Comma-separated older keys still accepted for reading during a rotation.
    event_keys_retired: str = ""
    # Byte budget of the bus streams; producers spool to disk instead of growing past it.
    bus_max_bytes: Annotated[int, msgspec.Meta(ge=1_000_000)] = 512 * 1024 * 1024
    # An entry idle this long is taken over from its consumer (>= 3x the slowest handler).
    bus_min_idle_ms: Annotated[int, msgspec.Meta(ge=10)] = 60_000
    bus_max_deliveries: Annotated[int, msgspec.Meta(ge=1)] = 5
    bus_claim_interval_s: Annotated[float, msgspec.Meta(gt=0)] = 5.0
    bus_block_ms: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 1000
    bus_body_retention_s: Annotated[int, msgspec.Meta(ge=1)] = 15 * 60
    bus_retention_s: Annotated[int, msgspec.Meta(ge=1)] = 24 * 3600
    bus_stale_group_s: Annotated[int, msgspec.Meta(ge=1)] = 30 * 60
    bus_trim_interval_s: Annotated[float, msgspec.Meta(gt=0)] = 30.0
    # Liveness fails when a consume loop has not turned for this long.
    stuck_after_s: Annotated[float, msgspec.Meta(gt=0)] = 300.0
    # SIGTERM: how long a worker may take to finish and ack the batch in hand.
    drain_timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 25.0


def env_names(cls: type[msgspec.Struct]) -> dict[str, str]:
    """``{field name: environment variable}`` for a settings class (overrides merged up the MRO)."""
    overrides: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        overrides.update(getattr(klass, "__env_names__", {}))
    return {f.name: overrides.get(f.name, f.name.upper()) for f in msgspec.structs.fields(cls)}


def _reason(exc: msgspec.ValidationError) -> str:
    text = str(exc)
    # msgspec appends " - at `$...`" for nested paths; the variable name already locates it.
    return text.split(" - at ", 1)[0].replace("Expected", "expected")


def load_settings(cls: type[T], environ: Mapping[str, str] | None = None) -> T:
    """Build ``cls`` from the environment, raising :class:`SettingsError` naming every bad var."""
    env = os.environ if environ is None else environ
    names = env_names(cls)
    values: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for field in msgspec.structs.fields(cls):
        var = names[field.name]
        if var not in env:
            if field.required:
                problems[var] = "required but not set"
            continue
        raw = env[var]
        try:
            values[field.name] = msgspec.convert(raw, field.type, strict=False)
        except msgspec.ValidationError as exc:
            problems[var] = _reason(exc)
    if problems:
        raise SettingsError(problems)
    try:
        return msgspec.convert(values, cls, strict=False)
    except msgspec.ValidationError as exc:  # cross-field checks in __post_init__
        raise SettingsError({"settings": str(exc)}) from exc


def load_settings_or_exit(cls: type[T], service: str) -> T:
    """:func:`load_settings`, but print one line and exit 2 on bad configuration."""
    try:
        return load_settings(cls)
    except SettingsError as exc:
        print(f"smoltbot-{service}: {exc}", file=sys.stderr)  # noqa: T201
        raise SystemExit(2) from None
