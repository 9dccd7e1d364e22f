"""Observer settings, read once from the environment in ``__main__``."""

from __future__ import annotations

from typing import Annotated, ClassVar

import msgspec
from smoltbot_config import CommonSettings, Port, PositiveInt


class ObserverSettings(CommonSettings, frozen=True, kw_only=True):
    """``SMOLTBOT_OBSERVER_*`` plus the shared variables (architecture §8).

    Delivery timing (``SMOLTBOT_BUS_*``) is shared bus tuning, applied by the worker runtime.
    """

    __env_names__: ClassVar[dict[str, str]] = {
        "port": "SMOLTBOT_OBSERVER_PORT",
        "host": "SMOLTBOT_OBSERVER_HOST",
        "batch_size": "SMOLTBOT_OBSERVER_BATCH_SIZE",
        "card_cache_ttl_s": "SMOLTBOT_OBSERVER_CARD_CACHE_TTL_S",
    }

    port: Port = 9101
    host: str = "0.0.0.0"  # noqa: S104 - probes must be reachable from the kubelet
    batch_size: PositiveInt = 50
    card_cache_ttl_s: Annotated[float, msgspec.Meta(ge=0)] = 5.0
