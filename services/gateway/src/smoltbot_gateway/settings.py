"""Gateway settings: read once from the environment at the process edge (architecture §8)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from smoltbot_config import (
    BusSettings,
    Port,
    Seconds,
    SettingsCheckError,
    default_consumer_name,
)
from smoltbot_contracts import FailurePolicy

from smoltbot_gateway.licence import KEY_REQUIREMENT, public_key_supported

HttpUrl = Annotated[str, msgspec.Meta(pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$")]
OptionalHttpUrl = Annotated[str, msgspec.Meta(pattern=r"^(https?://[^\s/?#]+(/[^\s?#]*)?)?$")]
Millis = Annotated[float, msgspec.Meta(gt=0, le=10_000)]


class GatewaySettings(BusSettings, frozen=True, kw_only=True):
    """Everything the gateway reads from the environment; each field names its variable."""

    port: Port = msgspec.field(default=8787, name="SMOLTBOT_GATEWAY_PORT")
    # A gateway serves its network; set 127.0.0.1 to restrict.
    host: str = msgspec.field(default="0.0.0.0", name="SMOLTBOT_GATEWAY_HOST")  # noqa: S104
    upstream_anthropic_url: HttpUrl = msgspec.field(
        default="https://api.anthropic.com", name="SMOLTBOT_UPSTREAM_ANTHROPIC_URL"
    )
    upstream_openai_url: HttpUrl = msgspec.field(
        default="https://api.openai.com", name="SMOLTBOT_UPSTREAM_OPENAI_URL"
    )
    upstream_gemini_url: HttpUrl = msgspec.field(
        default="https://generativelanguage.googleapis.com", name="SMOLTBOT_UPSTREAM_GEMINI_URL"
    )
    # Cap on response bytes copied into exchange.v1 (the client always gets everything).
    max_captured_bytes: Annotated[int, msgspec.Meta(ge=0, le=64 * 1024 * 1024)] = msgspec.field(
        default=1024 * 1024, name="SMOLTBOT_GATEWAY_MAX_CAPTURED_BYTES"
    )
    # Reply-stream / event identity of this process; "" = consumer name, else <host>-<pid>.
    gateway_instance: str = msgspec.field(default="", name="SMOLTBOT_GATEWAY_INSTANCE")
    upstream_connect_timeout_s: Seconds = msgspec.field(
        default=5.0, name="SMOLTBOT_GATEWAY_UPSTREAM_CONNECT_TIMEOUT_S"
    )
    # Waiting for a free pooled connection plus connecting: past it the call fails fast (502).
    upstream_pool_timeout_s: Seconds = msgspec.field(
        default=10.0, name="SMOLTBOT_GATEWAY_UPSTREAM_POOL_TIMEOUT_S"
    )
    # Longest silence between two upstream chunks, including time to headers of a non-streamed
    # call (providers allow about 10 minutes for a long generation).
    upstream_read_timeout_s: Seconds = msgspec.field(
        default=600.0, name="SMOLTBOT_GATEWAY_UPSTREAM_READ_TIMEOUT_S"
    )
    # Largest request body accepted (413 past it).
    max_request_bytes: Annotated[int, msgspec.Meta(ge=1024)] = msgspec.field(
        default=32 * 1024 * 1024, name="SMOLTBOT_GATEWAY_MAX_REQUEST_BYTES"
    )
    # All request bodies held at once by this process; a call that does not fit gets 503 with
    # Retry-After (the SDKs retry it) instead of growing the process without bound. Bodies over
    # 1 MiB may use three quarters of it, so huge uploads never starve ordinary calls.
    max_inflight_body_bytes: Annotated[int, msgspec.Meta(ge=4 * 1024 * 1024)] = msgspec.field(
        default=64 * 1024 * 1024, name="SMOLTBOT_GATEWAY_MAX_INFLIGHT_BODY_BYTES"
    )
    # A request body must arrive within this time (408 past it): a trickling client cannot hold
    # memory and a connection for ever.
    body_timeout_s: Seconds = msgspec.field(default=30.0, name="SMOLTBOT_GATEWAY_BODY_TIMEOUT_S")
    upstream_connect_retries: Annotated[int, msgspec.Meta(ge=0, le=10)] = msgspec.field(
        default=2, name="SMOLTBOT_GATEWAY_UPSTREAM_CONNECT_RETRIES"
    )
    upstream_max_connections: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = msgspec.field(
        default=1000, name="SMOLTBOT_GATEWAY_UPSTREAM_MAX_CONNECTIONS"
    )
    # Budget for the per-call agent-config read; past it the last known config is used.
    config_timeout_ms: Millis = msgspec.field(
        default=50.0, name="SMOLTBOT_GATEWAY_CONFIG_TIMEOUT_MS"
    )
    # After a Redis failure, skip config reads for this long (a tiny circuit breaker).
    config_backoff_s: Seconds = msgspec.field(default=5.0, name="SMOLTBOT_GATEWAY_CONFIG_BACKOFF_S")
    # Events queued in memory for the publisher; past it new events are dropped (counted).
    publish_buffer: Annotated[int, msgspec.Meta(ge=1, le=10_000_000)] = msgspec.field(
        default=10_000, name="SMOLTBOT_GATEWAY_PUBLISH_BUFFER"
    )
    # Where events go while Redis is down or the bus is over budget (one file set per process).
    spool_dir: str = msgspec.field(default="var/spool", name="SMOLTBOT_SPOOL_DIR")
    spool_max_bytes: Annotated[int, msgspec.Meta(ge=1024 * 1024)] = msgspec.field(
        default=256 * 1024 * 1024, name="SMOLTBOT_SPOOL_MAX_BYTES"
    )
    # Longest a waiting call (enforce mode, or AIP_INLINE_VERDICT) waits for its verdict,
    # publishing included (architecture §3.3). Keep it above the verifier's
    # SMOLTBOT_ANALYZER_TIMEOUT_MS plus a margin for the bus hops, else a slow analysis always
    # ends as a timeout here.
    aip_timeout_ms: Annotated[float, msgspec.Meta(gt=0, le=600_000)] = msgspec.field(
        default=10_000.0, name="SMOLTBOT_GATEWAY_AIP_TIMEOUT_MS"
    )
    # What a waiting call gets when no verdict comes (timeout, Redis, failed analysis), unless
    # the agent's config names its own: fail_open relays the answer, fail_closed answers 403.
    failure_policy: FailurePolicy = msgspec.field(
        default="fail_open", name="SMOLTBOT_GATEWAY_FAILURE_POLICY"
    )
    # true: non-streamed calls of every AIP-enabled agent wait for their verdict like enforce
    # mode (X-AIP-Verdict carries it), but only enforce mode ever blocks.
    aip_inline_verdict: bool = msgspec.field(default=False, name="AIP_INLINE_VERDICT")

    # Enterprise licence (licence.py): the JWT, and the PEM public key that verifies it
    # (Ed25519, P-256 or RSA; `\n` escapes accepted). No JWT: unlicensed (development).
    licence_jwt: str = msgspec.field(default="", name="MNEMOM_LICENSE_JWT")
    licence_public_key: str = msgspec.field(default="", name="MNEMOM_LICENSE_PUBLIC_KEY")
    # When set, the licence's iss / aud claims must match.
    licence_issuer: str = msgspec.field(default="", name="MNEMOM_LICENSE_ISSUER")
    licence_audience: str = msgspec.field(default="", name="MNEMOM_LICENSE_AUDIENCE")
    # Optional phone-home: a good answer is trusted 24 h, a failure retried after 1 h.
    licence_validate_url: OptionalHttpUrl = msgspec.field(
        default="", name="MNEMOM_LICENSE_VALIDATE_URL"
    )
    licence_validate_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=60)] = msgspec.field(
        default=5.0, name="MNEMOM_LICENSE_VALIDATE_TIMEOUT_S"
    )
    # The last good validation survives a restart here; "" = licence.json in SMOLTBOT_SPOOL_DIR.
    licence_state_file: str = msgspec.field(default="", name="MNEMOM_LICENSE_STATE_FILE")

    def __post_init__(self) -> None:
        if self.licence_jwt.strip() and not self.licence_public_key.strip():
            raise SettingsCheckError(licence_public_key="must be set when {licence_jwt} is set")
        if self.licence_public_key.strip() and not public_key_supported(self.licence_public_key):
            raise SettingsCheckError(licence_public_key=KEY_REQUIREMENT)

    def instance_name(self) -> str:
        """The configured instance, else the consumer name, else ``<host>-<pid>``."""
        return self.gateway_instance or self.consumer_name or default_consumer_name()

    def upstream_url(self, provider: str) -> str:
        urls = {
            "anthropic": self.upstream_anthropic_url,
            "openai": self.upstream_openai_url,
            "gemini": self.upstream_gemini_url,
        }
        return urls[provider].rstrip("/")
