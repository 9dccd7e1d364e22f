"""Gateway settings: read once from the environment at the process edge (architecture §8)."""

from __future__ import annotations

from typing import Annotated, ClassVar

import msgspec
from smoltbot_config import CommonSettings, Port, Seconds, default_consumer_name

HttpUrl = Annotated[str, msgspec.Meta(pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$")]
Millis = Annotated[float, msgspec.Meta(gt=0, le=10_000)]


class GatewaySettings(CommonSettings, frozen=True, kw_only=True):
    """Everything the gateway reads from the environment; see ``env_names`` for variable names."""

    __env_names__: ClassVar[dict[str, str]] = {
        "port": "SMOLTBOT_GATEWAY_PORT",
        "host": "SMOLTBOT_GATEWAY_HOST",
        "upstream_anthropic_url": "SMOLTBOT_UPSTREAM_ANTHROPIC_URL",
        "upstream_openai_url": "SMOLTBOT_UPSTREAM_OPENAI_URL",
        "upstream_gemini_url": "SMOLTBOT_UPSTREAM_GEMINI_URL",
        "max_captured_bytes": "SMOLTBOT_GATEWAY_MAX_CAPTURED_BYTES",
        "gateway_instance": "SMOLTBOT_GATEWAY_INSTANCE",
        "upstream_connect_timeout_s": "SMOLTBOT_GATEWAY_UPSTREAM_CONNECT_TIMEOUT_S",
        "upstream_read_timeout_s": "SMOLTBOT_GATEWAY_UPSTREAM_READ_TIMEOUT_S",
        "upstream_connect_retries": "SMOLTBOT_GATEWAY_UPSTREAM_CONNECT_RETRIES",
        "upstream_max_connections": "SMOLTBOT_GATEWAY_UPSTREAM_MAX_CONNECTIONS",
        "config_timeout_ms": "SMOLTBOT_GATEWAY_CONFIG_TIMEOUT_MS",
        "config_backoff_s": "SMOLTBOT_GATEWAY_CONFIG_BACKOFF_S",
        "publish_buffer": "SMOLTBOT_GATEWAY_PUBLISH_BUFFER",
        "max_request_bytes": "SMOLTBOT_GATEWAY_MAX_REQUEST_BYTES",
        "upstream_pool_timeout_s": "SMOLTBOT_GATEWAY_UPSTREAM_POOL_TIMEOUT_S",
        "spool_dir": "SMOLTBOT_SPOOL_DIR",
        "spool_max_bytes": "SMOLTBOT_SPOOL_MAX_BYTES",
    }

    port: Port = 8787
    host: str = "0.0.0.0"  # noqa: S104 (a gateway serves its network; set 127.0.0.1 to restrict)
    upstream_anthropic_url: HttpUrl = "https://api.anthropic.com"
    upstream_openai_url: HttpUrl = "https://api.openai.com"
    upstream_gemini_url: HttpUrl = "https://generativelanguage.googleapis.com"
    # Cap on response bytes copied into exchange.v1 (the client always gets everything).
    max_captured_bytes: Annotated[int, msgspec.Meta(ge=0, le=64 * 1024 * 1024)] = 1024 * 1024
    # Reply-stream / event identity of this process; "" = consumer name, else <host>-<pid>.
    gateway_instance: str = ""
    upstream_connect_timeout_s: Seconds = 5.0
    # Waiting for a free pooled connection plus connecting: past it the call fails fast (502).
    upstream_pool_timeout_s: Seconds = 10.0
    # Longest silence between two upstream chunks, including time to headers of a non-streamed
    # call (providers allow about 10 minutes for a long generation).
    upstream_read_timeout_s: Seconds = 600.0
    # Largest request body accepted (413 past it).
    max_request_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 32 * 1024 * 1024
    upstream_connect_retries: Annotated[int, msgspec.Meta(ge=0, le=10)] = 2
    upstream_max_connections: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 1000
    # Budget for the per-call agent-config read; past it the last known config is used.
    config_timeout_ms: Millis = 50.0
    # After a Redis failure, skip config reads for this long (a tiny circuit breaker).
    config_backoff_s: Seconds = 5.0
    publish_buffer: Annotated[int, msgspec.Meta(ge=1, le=10_000_000)] = 10_000
    # Where events go while Redis is down or the bus is over budget (one file set per process).
    spool_dir: str = "var/spool"
    spool_max_bytes: Annotated[int, msgspec.Meta(ge=1024 * 1024)] = 256 * 1024 * 1024

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
