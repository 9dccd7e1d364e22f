"""Observer settings, read once from the environment in ``__main__``."""

from __future__ import annotations

from typing import Annotated

import msgspec
from smoltbot_config import BatchSize, BusSettings, Port


class ObserverSettings(BusSettings, frozen=True, kw_only=True):
    """``SMOLTBOT_OBSERVER_*`` plus the shared variables (architecture §8).

    Delivery timing (``SMOLTBOT_BUS_*``) is shared bus tuning, applied by the worker runtime.
    """

    port: Port = msgspec.field(default=9101, name="SMOLTBOT_OBSERVER_PORT")
    # Probes must be reachable from the kubelet.
    host: str = msgspec.field(default="0.0.0.0", name="SMOLTBOT_OBSERVER_HOST")  # noqa: S104
    batch_size: BatchSize = msgspec.field(default=50, name="SMOLTBOT_OBSERVER_BATCH_SIZE")
    # How long an agent's card is reused before it is read from Redis again.
    card_cache_ttl_s: Annotated[float, msgspec.Meta(ge=0)] = msgspec.field(
        default=5.0, name="SMOLTBOT_OBSERVER_CARD_CACHE_TTL_S"
    )
