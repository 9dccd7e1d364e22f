"""Settings from the environment: one frozen msgspec struct per service, validated at start.

Each field is one environment variable: its upper-cased name (``rename="upper"``) unless the
field declares another with ``msgspec.field(name=...)`` right beside it. Every malformed variable
is reported at once; the process exits with code 2 and one line that names them, never echoing
values (they may hold secrets).
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal, TypeVar

import msgspec

__all__ = [
    "CONFIG_ERROR_EXIT",
    "DEFAULT_REDIS_URL",
    "AnalyzerBackend",
    "AnalyzerSettings",
    "BatchSize",
    "BusSettings",
    "CommonSettings",
    "EventKey",
    "EventKeyList",
    "Port",
    "PositiveFloat",
    "PositiveInt",
    "PostgresUrl",
    "RedisUrl",
    "Seconds",
    "ServiceSettings",
    "SettingsCheckError",
    "SettingsError",
    "default_consumer_name",
    "env_names",
    "explained",
    "load_settings",
    "load_settings_or_exit",
]

T = TypeVar("T", bound=msgspec.Struct)

CONFIG_ERROR_EXIT = 2
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
_REASON = "reason"


def explained(reason: str, **constraints: Any) -> msgspec.Meta:
    """``msgspec.Meta(**constraints)`` whose violation is reported to an operator as ``reason``.

    The wording lives beside the constraint it explains, and it never echoes the value.
    """
    return msgspec.Meta(**constraints, extra={_REASON: reason})


RedisUrl = Annotated[
    str,
    explained(
        "expected a redis://, rediss:// or unix:// URL", pattern=r"^(redis|rediss|unix)://.+"
    ),
]
PostgresUrl = Annotated[
    str, explained("expected a postgresql:// or postgres:// URL", pattern=r"^postgres(ql)?://.*")
]
LogLevel = Annotated[
    str,
    explained(
        "expected one of: debug, info, warning, error, critical",
        pattern=r"^(?i:debug|info|warning|warn|error|critical)$",
    ),
]
Port = Annotated[int, msgspec.Meta(ge=1, le=65535)]
PositiveInt = Annotated[int, msgspec.Meta(ge=1)]
PositiveFloat = Annotated[float, msgspec.Meta(gt=0)]
# Entries read from the bus per turn; past ten thousand one batch holds minutes of work.
BatchSize = Annotated[int, msgspec.Meta(ge=1, le=10_000)]
Seconds = Annotated[float, msgspec.Meta(gt=0, le=3600)]

# Base64 of exactly 32 bytes is 43 alphabet characters and one "=": precisely what
# base64.b64decode(text.strip(), validate=True) turns into 32 bytes (the bus's EventCipher).
_KEY_ENTRY = r"\s*(?:[A-Za-z0-9+/]{43}=)?\s*"
EventKey = Annotated[
    str,
    explained(
        "must be base64 of 32 bytes, as `openssl rand -base64 32` prints, or empty for none",
        pattern=rf"^{_KEY_ENTRY}$",
    ),
]
EventKeyList = Annotated[
    str,
    explained(
        "every comma-separated entry must be base64 of 32 bytes",
        pattern=rf"^{_KEY_ENTRY}(?:,{_KEY_ENTRY})*$",
    ),
]


class SettingsError(Exception):
    """One or more environment variables are malformed. ``problems`` maps name -> reason."""

    def __init__(self, problems: dict[str, str]) -> None:
        self.problems = problems
        detail = "; ".join(f"{name} ({why})" for name, why in problems.items())
        super().__init__(f"invalid configuration: {detail}")


class SettingsCheckError(ValueError):
    """Raise from ``__post_init__`` for checks a field's type cannot state, keyed by field name.

    ``SettingsCheckError(bus_min_idle_ms="must be at least 3x {analysis_timeout_ms}")``: the problem
    is reported under the field's variable, and ``{field}`` in a reason becomes that field's
    variable, so the message names variables without repeating their spelling.
    """

    def __init__(self, **reasons: str) -> None:
        self.reasons = reasons
        super().__init__("; ".join(f"{field} {why}" for field, why in reasons.items()))


def default_consumer_name() -> str:
    """``$POD_NAME`` when set, else ``<host>-<pid>``: two processes never share a name."""
    return os.environ.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"


class ServiceSettings(msgspec.Struct, frozen=True, kw_only=True, rename="upper"):
    """Service basics every process reads: where the bus is, its namespace, identity, keys."""

    redis_url: RedisUrl = DEFAULT_REDIS_URL
    stream_prefix: str = msgspec.field(default="smoltbot:", name="SMOLTBOT_STREAM_PREFIX")
    consumer_name: str = msgspec.field(default="", name="SMOLTBOT_CONSUMER_NAME")
    log_level: LogLevel = "info"
    # AES-256-GCM key for exchanges*/traces* bodies; empty = plaintext.
    event_key: EventKey = msgspec.field(default="", name="SMOLTBOT_EVENT_KEY")
    # Older keys still accepted for reading during a rotation.
    event_keys_retired: EventKeyList = msgspec.field(default="", name="SMOLTBOT_EVENT_KEYS_RETIRED")


class BusSettings(ServiceSettings, frozen=True, kw_only=True):
    """Bus tuning: delivery timing, retention and liveness limits (deployment decisions)."""

    # Byte budget of the bus streams; producers spool to disk instead of growing past it.
    bus_max_bytes: Annotated[int, msgspec.Meta(ge=1_000_000)] = msgspec.field(
        default=512 * 1024 * 1024, name="SMOLTBOT_BUS_MAX_BYTES"
    )
    # An entry idle this long is taken over from its consumer (>= 3x the slowest handler).
    bus_min_idle_ms: Annotated[int, msgspec.Meta(ge=10)] = msgspec.field(
        default=60_000, name="SMOLTBOT_BUS_MIN_IDLE_MS"
    )
    # Deliveries before an entry goes to its dead-letter stream.
    bus_max_deliveries: PositiveInt = msgspec.field(default=5, name="SMOLTBOT_BUS_MAX_DELIVERIES")
    # How often idle entries are looked for, the group heartbeat beats and lag is measured.
    bus_claim_interval_s: PositiveFloat = msgspec.field(
        default=5.0, name="SMOLTBOT_BUS_CLAIM_INTERVAL_S"
    )
    # How long one read waits for new entries.
    bus_block_ms: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = msgspec.field(
        default=1000, name="SMOLTBOT_BUS_BLOCK_MS"
    )
    # Replay window of exchanges*/traces* (they carry bodies).
    bus_body_retention_s: PositiveInt = msgspec.field(
        default=15 * 60, name="SMOLTBOT_BUS_BODY_RETENTION_S"
    )
    # Retention of verdicts, agents and control.
    bus_retention_s: PositiveInt = msgspec.field(default=24 * 3600, name="SMOLTBOT_BUS_RETENTION_S")
    # A group with no consumer for this long no longer holds trimming back.
    bus_stale_group_s: PositiveInt = msgspec.field(
        default=30 * 60, name="SMOLTBOT_BUS_STALE_GROUP_S"
    )
    # How often streams are trimmed, dead letters expire and idle consumers are removed.
    bus_trim_interval_s: PositiveFloat = msgspec.field(
        default=30.0, name="SMOLTBOT_BUS_TRIM_INTERVAL_S"
    )
    # Liveness fails when a consume loop has not turned for this long.
    stuck_after_s: PositiveFloat = msgspec.field(default=300.0, name="SMOLTBOT_STUCK_AFTER_S")
    # SIGTERM: how long a worker may take to finish and ack the batch in hand.
    drain_timeout_s: PositiveFloat = msgspec.field(default=25.0, name="SMOLTBOT_DRAIN_TIMEOUT_S")


AnalyzerBackend = Literal["rules", "anthropic", "openai", "hybrid"]


class AnalyzerSettings(BusSettings, frozen=True, kw_only=True):
    """The analysis LLM, shared by every service that asks one (the verifier's conscience
    analysis, the observer's decision analysis): one set of ``SMOLTBOT_ANALYZER_*`` variables.

    Which backend needs what is the analysis library's rule, not this one's: a service checks
    its fields with :meth:`analyzer_problems` in its ``__post_init__``. Keys never appear in the
    ``repr``.
    """

    analyzer_backend: AnalyzerBackend = msgspec.field(
        default="rules", name="SMOLTBOT_ANALYZER_BACKEND"
    )
    # LLM backends: the analysis server's root URL (anthropic: https://api.anthropic.com).
    analyzer_base_url: str = msgspec.field(default="", name="SMOLTBOT_ANALYZER_BASE_URL")
    # LLM backends: the analysis server's key (a secret; never logged).
    analyzer_api_key: str = msgspec.field(default="", name="SMOLTBOT_ANALYZER_API_KEY")
    # The anthropic backend's key when SMOLTBOT_ANALYZER_API_KEY is empty.
    anthropic_api_key: str = msgspec.field(default="", name="ANTHROPIC_API_KEY")
    # LLM backends: the model (anthropic: claude-haiku-4-5-20251001).
    analyzer_model: str = msgspec.field(default="", name="SMOLTBOT_ANALYZER_MODEL")

    def __repr__(self) -> str:  # the default repr would show the keys
        return f"{type(self).__name__}(analyzer_backend={self.analyzer_backend!r}, ...)"

    @property
    def analyzer_key(self) -> str:
        """The analysis key: ``SMOLTBOT_ANALYZER_API_KEY``, else (anthropic only)
        ``ANTHROPIC_API_KEY``."""
        if self.analyzer_api_key:
            return self.analyzer_api_key
        return self.anthropic_api_key if self.analyzer_backend == "anthropic" else ""

    def analyzer_problems(
        self, check: Callable[..., Mapping[str, str]], backend: str | None = None
    ) -> dict[str, str]:
        """``{field: reason}`` for :class:`SettingsCheckError`, from ``check(backend, *,
        base_url, api_key, model)`` returning ``{variable: reason}`` (the analysis library's
        ``backend_problems``). ``backend`` defaults to the configured one."""
        names = {var: field for field, var in env_names(type(self)).items()}
        found = check(
            self.analyzer_backend if backend is None else backend,
            base_url=self.analyzer_base_url,
            api_key=self.analyzer_key,
            model=self.analyzer_model,
        )
        return {names.get(var, var): why for var, why in found.items()}


# Every shared variable: what the bus runtime and the operator commands are handed.
CommonSettings = BusSettings


def env_names(cls: type[msgspec.Struct]) -> dict[str, str]:
    """``{field name: environment variable}`` for a settings class."""
    return {f.name: f.encode_name for f in msgspec.structs.fields(cls)}


def _problem(field_type: Any, exc: msgspec.ValidationError) -> str:
    """The :func:`explained` reason, the allowed choices, or msgspec's message without a path."""
    info = msgspec.inspect.type_info(field_type)
    if isinstance(info, msgspec.inspect.Metadata):
        if info.extra and _REASON in info.extra:
            return str(info.extra[_REASON])
        info = info.type
    if isinstance(info, msgspec.inspect.LiteralType):  # msgspec would echo the value
        return "expected one of: " + ", ".join(str(v) for v in info.values)
    # msgspec appends " - at `$...`" for nested paths; the variable name already locates it.
    return str(exc).split(" - at ", 1)[0].replace("Expected", "expected")


def load_settings(cls: type[T], environ: Mapping[str, str] | None = None) -> T:
    """Build ``cls`` from the environment, raising :class:`SettingsError` naming every bad var."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for field in msgspec.structs.fields(cls):
        var = field.encode_name
        if var not in env:
            if field.required:
                problems[var] = "required but not set"
            continue
        try:
            values[var] = msgspec.convert(env[var], field.type, strict=False)
        except msgspec.ValidationError as exc:
            problems[var] = _problem(field.type, exc)
    if problems:
        raise SettingsError(problems)
    try:
        return msgspec.convert(values, cls, strict=False)
    except msgspec.ValidationError as exc:  # cross-field checks in __post_init__
        if not isinstance(exc.__cause__, SettingsCheckError):
            raise SettingsError({"settings": str(exc)}) from exc
        names = env_names(cls)
        raise SettingsError(
            {names[field]: why.format_map(names) for field, why in exc.__cause__.reasons.items()}
        ) from None


def load_settings_or_exit(
    cls: type[T], service: str, environ: Mapping[str, str] | None = None
) -> T:
    """:func:`load_settings`, or the one way a process reports bad configuration.

    One stderr line as ``smoltbot-<service>``, then exit 2: a supervisor seeing 2 knows that
    restarting cannot help (``smoltbot up`` stops everything).
    """
    try:
        return load_settings(cls, environ)
    except SettingsError as exc:
        print(f"smoltbot-{service}: {exc}", file=sys.stderr)  # noqa: T201
        raise SystemExit(CONFIG_ERROR_EXIT) from None
